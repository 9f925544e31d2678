"""Trading sessions: which part of an exchange's day a moment belongs to, and the stretches of
time candles are cut from (docs/streaming.md, "Sessions").

An exchange's day, in its own time zone, is up to three sessions: pre-market, the regular
session and after-hours (post). What counts in candles is either the regular session or the
extended day (all three), per ``STOCKAPP_SESSION_HOURS``. A *segment* is one counted session
of one day (the regular session is split in two around a lunch break, where an exchange has
one); intraday candles are cut from segments, never across one's close, and a ``1d`` candle is
a day's counted span. Holidays have no sessions; half-days close early.

The sessions come from ``pandas_market_calendars``, which ships its holiday and early-close
rules (no network at run time) and, unlike ``exchange_calendars``, knows the NYSE's pre-market
and after-hours times. The calendar is read a few years at a time and kept as sorted lists of
epoch milliseconds: a lookup is a bisection, and the segment found last is tried first, since
a symbol's ticks arrive in time order.

``ALWAYS_OPEN`` is a calendar with no closed time: every moment is the regular session, and a
day runs midnight to midnight in the market's time zone (``STOCKAPP_MARKET_TIMEZONE``). With
it, candles are what they were before sessions existed (tests and the demo at night use it).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import threading
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

ALWAYS_OPEN = "ALWAYS_OPEN"
# Names that pandas_market_calendars maps to a calendar without the extended hours which its
# own class of the same exchange has (its "XNYS" is exchange_calendars' regular-only one).
_LIBRARY_NAMES = {"XNYS": "NYSE", "XNAS": "NASDAQ"}
# Years read at a time around a moment asked about (a lookup outside them reads more).
_YEARS_AROUND = 1
# The years an exchange's calendar is read for: outside them every moment is closed (pandas'
# timestamps end in 2262; a quote's time may be any the validation allows, up to 3000).
_FIRST_YEAR, _LAST_YEAR = 1950, 2200
# How far ahead next_open looks before it gives up (an exchange with no future sessions).
_NEXT_OPEN_YEARS = 5


class Session(StrEnum):
    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    CLOSED = "closed"


class Hours(StrEnum):
    """What counts in candles and indicators."""

    REGULAR = "regular"
    EXTENDED = "extended"


@dataclass(frozen=True, slots=True)
class Segment:
    """One counted session of one trading day, ``[open, close)`` in epoch ms, and the day's
    counted span ``[day_open, day_close)`` (its ``1d`` candle)."""

    session: Session
    open: int
    close: int
    day_open: int
    day_close: int


@dataclass(frozen=True, slots=True)
class TradingDay:
    """A trading day's sessions as the exchange runs them, whatever counts (epoch ms; a
    session the exchange does not hold is ``None``)."""

    date: dt.date
    pre: tuple[int, int] | None
    regular: tuple[tuple[int, int], ...]  # two parts around a lunch break
    post: tuple[int, int] | None

    def counted(self, extended: bool) -> tuple[int, int]:
        """The day's counted open and close: its regular session's, or with ``extended`` from
        the pre-market's open to the after-hours' close (where the exchange holds them)."""
        if extended:
            return (self.pre or self.regular[0])[0], (self.post or self.regular[-1])[1]
        return self.regular[0][0], self.regular[-1][1]


class Calendar:
    """The sessions of one exchange (or of none: :class:`AlwaysOpen`)."""

    name: str
    tz: ZoneInfo
    hours: Hours
    continuous = False  # every moment counts, and intraday windows ignore the calendar

    def session(self, ts: int) -> Session:
        """The session ``ts`` falls in, whatever counts."""
        raise NotImplementedError

    def segment(self, ts: int) -> Segment | None:
        """The counted segment holding ``ts``; None: ``ts`` does not count in candles."""
        raise NotImplementedError

    def days(self, start: dt.date, end: dt.date) -> list[TradingDay]:
        """The trading days from ``start`` to ``end`` (exchange dates, both included)."""
        raise NotImplementedError

    def open_now(self, now_ms: int) -> bool:
        """Whether ``now_ms`` is in a counted session."""
        return self.segment(now_ms) is not None

    def next_open(self, ts: int) -> int:
        """``ts`` if it is in a counted session, else the start of the next one."""
        raise NotImplementedError


class AlwaysOpen(Calendar):
    """No closed time; days run midnight to midnight in ``tz``."""

    continuous = True

    def __init__(self, tz: str) -> None:
        self.name = ALWAYS_OPEN
        self.tz = ZoneInfo(tz)
        self.hours = Hours.REGULAR
        self._last: Segment | None = None

    def session(self, ts: int) -> Session:
        return Session.REGULAR

    def next_open(self, ts: int) -> int:
        return ts

    def segment(self, ts: int) -> Segment:
        last = self._last
        if last is not None and last.open <= ts < last.close:
            return last
        local = dt.datetime.fromtimestamp(ts / 1000, self.tz)
        start, end = self._midnights(local.date())
        self._last = Segment(Session.REGULAR, start, end, start, end)
        return self._last

    def _midnights(self, day: dt.date) -> tuple[int, int]:
        midnight = dt.datetime.combine(day, dt.time(), self.tz)
        following = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.tz)
        return int(midnight.timestamp() * 1000), int(following.timestamp() * 1000)

    def days(self, start: dt.date, end: dt.date) -> list[TradingDay]:
        out = []
        day = start
        while day <= end:
            out.append(TradingDay(day, None, (self._midnights(day),), None))
            day += dt.timedelta(days=1)
        return out


class ExchangeCalendar(Calendar):
    """An exchange's sessions from pandas_market_calendars."""

    def __init__(self, name: str, hours: Hours) -> None:
        import pandas_market_calendars as mcal  # pandas and the rules: only when asked for

        self.name = name
        self.hours = hours
        self._cal = mcal.get_calendar(_LIBRARY_NAMES.get(name, name))
        self.tz = ZoneInfo(str(self._cal.tz))
        times = list(self._cal.market_times)
        self._extended_known = "pre" in times and "post" in times
        if hours is Hours.EXTENDED and not self._extended_known:
            raise ValueError(
                f"the {name} calendar knows no pre-market or after-hours times: "
                "STOCKAPP_SESSION_HOURS=extended needs them"
            )
        self._breaks = "break_start" in times and "break_end" in times
        self._lock = threading.Lock()  # the web layer may ask from another thread
        self._years: tuple[int, int] | None = None  # the years read, inclusive
        # Epoch ms of the years strictly inside those read: a moment there needs no read
        # (checked per quote, so without a datetime).
        self._inner = (0, 0)
        # The days read, and every session of them in time order: its start, and (end,
        # session, day); replaced whole, so a reader never sees half of a new read.
        self._index: tuple[list[TradingDay], list[int], list[tuple[int, Session, TradingDay]]] = (
            [],
            [],
            [],
        )
        self._last: Segment | None = None

    # -- reading the library -----------------------------------------------------------------

    def _read(self, first: int, last: int) -> None:
        schedule = self._cal.schedule(
            dt.date(first, 1, 1) - dt.timedelta(days=7),
            dt.date(last, 12, 31),
            start=self._cal.market_times[0],
            end=self._cal.market_times[-1],
        )
        days: list[TradingDay] = []
        for label, row in schedule.iterrows():
            date = label.date() if hasattr(label, "date") else label
            if date.year < first:
                continue  # read for the timestamps only: a day is kept once, by its year
            ms = functools.partial(_ms, row)
            open_, close = ms("market_open"), ms("market_close")
            if open_ is None or close is None:
                continue
            regular: tuple[tuple[int, int], ...] = ((open_, close),)
            if self._breaks:
                start, end = ms("break_start"), ms("break_end")
                if start is not None and end is not None and open_ < start <= end < close:
                    regular = ((open_, start), (end, close))
            pre = post = None
            if self._extended_known:
                pre_open, post_close = ms("pre"), ms("post")
                if pre_open is not None and pre_open < open_:
                    pre = (pre_open, open_)
                if post_close is not None and post_close > close:
                    post = (close, post_close)
            days.append(TradingDay(date, pre, regular, post))
        starts: list[int] = []
        spans: list[tuple[int, Session, TradingDay]] = []
        for day in days:
            if day.pre is not None:
                starts.append(day.pre[0])
                spans.append((day.pre[1], Session.PRE, day))
            for part in day.regular:
                starts.append(part[0])
                spans.append((part[1], Session.REGULAR, day))
            if day.post is not None:
                starts.append(day.post[0])
                spans.append((day.post[1], Session.POST, day))
        self._index = (days, starts, spans)
        self._years = (first, last)
        self._inner = (_year_start(first + 1), _year_start(last))
        self._last = None

    def _cover(self, ts: int) -> None:
        inner = self._inner
        if inner[0] <= ts < inner[1]:
            return
        year = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).year
        years = self._years
        if years is not None and years[0] < year < years[1]:
            return
        with self._lock:
            years = self._years
            if years is not None and years[0] < year < years[1]:
                return
            first = max(year - _YEARS_AROUND, _FIRST_YEAR)
            last = min(year + _YEARS_AROUND, _LAST_YEAR)
            if years is not None:  # keep what was read: ticks of one stream stay near
                first, last = min(first, years[0]), max(last, years[1])
            self._read(first, last)

    # -- lookups -----------------------------------------------------------------------------

    def _find(self, ts: int) -> tuple[int, int, Session, TradingDay] | None:
        """(start, end, session, day) of the exchange's session holding ``ts``."""
        if not _RANGE[0] <= ts < _RANGE[1]:
            return None
        self._cover(ts)
        _, starts, spans = self._index
        i = bisect.bisect_right(starts, ts) - 1
        if i < 0:
            return None
        end, session, day = spans[i]
        if ts >= end:
            return None
        return starts[i], end, session, day

    def session(self, ts: int) -> Session:
        found = self._find(ts)
        return Session.CLOSED if found is None else found[2]

    def segment(self, ts: int) -> Segment | None:
        last = self._last
        if last is not None and last.open <= ts < last.close:
            return last
        found = self._find(ts)
        if found is None:
            return None
        start, end, session, day = found
        if self.hours is Hours.REGULAR:
            if session is not Session.REGULAR:
                return None
            day_open, day_close = day.regular[0][0], day.regular[-1][1]
        else:
            day_open = (day.pre or day.regular[0])[0]
            day_close = (day.post or day.regular[-1])[1]
        self._last = Segment(session, start, end, day_open, day_close)
        return self._last

    def next_open(self, ts: int) -> int:
        if self.segment(ts) is not None:
            return ts
        ts = max(ts, _RANGE[0])
        moment = ts
        for _ in range(_NEXT_OPEN_YEARS):
            self._cover(moment)
            _, starts, spans = self._index
            for j in range(bisect.bisect_left(starts, ts), len(starts)):
                if self.hours is Hours.EXTENDED or spans[j][1] is Session.REGULAR:
                    return starts[j]
            years = self._years
            assert years is not None
            # Nothing counted in the years read after ``ts``: read the next ones.
            if years[1] + 1 > _LAST_YEAR:
                break
            moment = int(dt.datetime(years[1] + 1, 7, 1, tzinfo=dt.UTC).timestamp() * 1000)
        raise ValueError(f"{self.name}: no session after {ts} in the years it is read for")

    def days(self, start: dt.date, end: dt.date) -> list[TradingDay]:
        noon = dt.datetime.combine(start, dt.time(12), self.tz)
        self._cover(int(noon.timestamp() * 1000))
        self._cover(int(dt.datetime.combine(end, dt.time(12), self.tz).timestamp() * 1000))
        return [d for d in self._index[0] if start <= d.date <= end]


def _year_start(year: int) -> int:
    return int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


_RANGE = (_year_start(_FIRST_YEAR + 1), _year_start(_LAST_YEAR))


def _ms(row: Any, column: str) -> int | None:
    """A schedule cell as epoch ms; None: not held that day (NaT, or no such column)."""
    value = row.get(column)
    if value is None or value != value:
        return None
    return int(value.value // 1_000_000)


@cache
def calendar(name: str, hours: str, market_tz: str) -> Calendar:
    """The calendar of ``name`` (an exchange pandas_market_calendars knows, or
    ``ALWAYS_OPEN``), one per process and setting."""
    if name == ALWAYS_OPEN:
        return AlwaysOpen(market_tz)
    return ExchangeCalendar(name, Hours(hours))


def known(name: str) -> bool:
    """Whether ``name`` is a calendar this module can build."""
    if name == ALWAYS_OPEN:
        return True
    import pandas_market_calendars as mcal

    return name in _LIBRARY_NAMES or name in mcal.get_calendar_names()
