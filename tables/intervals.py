"""Candle intervals and the event-time windows they cut.

With the ``ALWAYS_OPEN`` calendar, intraday intervals are aligned to the Unix epoch in UTC
(pandas ``origin="epoch"``) and ``1d`` to midnight in the market's time zone, so a daily candle
is a calendar day even across daylight-saving changes (those days last 23 or 25 hours).

With an exchange's calendar (tables/sessions.py) windows are cut from its counted sessions: an
intraday window is aligned to the session's open (anchor ``session``) or to the epoch (anchor
``epoch``), and ends at the session's close at the latest; a ``1d`` window is the trading
day's counted span; a moment outside the counted sessions has no window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from stockapp.tables.sessions import Calendar

_SPEC = re.compile(r"^(\d+)([smh])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
DAY_MS = 86_400_000


@dataclass
class Interval:
    """One candle interval; ``window(ts)`` is the hot path, so daily windows are cached."""

    name: str
    ms: int  # nominal length; a daily window's real length can differ on DST days
    tz: ZoneInfo | None = None  # set for calendar-day intervals only
    # An exchange's sessions (None or a continuous one: the epoch and midnight, as above).
    calendar: Calendar | None = None
    anchor_session: bool = False  # intraday windows start at the session's open
    _day_cache: tuple[int, int] = field(default=(0, 0), repr=False)

    def __post_init__(self) -> None:
        if self.calendar is not None and self.calendar.continuous:
            self.calendar = None

    @property
    def daily(self) -> bool:
        return self.tz is not None

    def window(self, ts: int) -> tuple[int, int] | None:
        """``(start, end)`` in epoch ms of the window holding ``ts``, end exclusive; None:
        ``ts`` is outside the sessions that count."""
        if self.calendar is not None:
            return self._session_window(ts)
        if self.tz is None:
            start = ts - ts % self.ms
            return start, start + self.ms
        start, end = self._day_cache
        if start <= ts < end:
            return start, end
        local = dt.datetime.fromtimestamp(ts / 1000, self.tz)
        midnight = dt.datetime.combine(local.date(), dt.time(), self.tz)
        following = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), self.tz)
        self._day_cache = (int(midnight.timestamp() * 1000), int(following.timestamp() * 1000))
        return self._day_cache

    def _session_window(self, ts: int) -> tuple[int, int] | None:
        assert self.calendar is not None
        segment = self.calendar.segment(ts)
        if segment is None:
            return None
        if self.tz is not None:
            return segment.day_open, segment.day_close
        ms = self.ms
        if self.anchor_session:
            start = ts - (ts - segment.open) % ms
            return start, min(start + ms, segment.close)
        aligned = ts - ts % ms
        return max(aligned, segment.open), min(aligned + ms, segment.close)

    def end(self, start: int) -> int:
        """The end of the window starting at ``start`` (a window's start is inside it)."""
        window = self.window(start)
        assert window is not None, "a window's start is in a counted session"
        return window[1]


# STOCKAPP_INTRADAY_ANCHOR's values; ``auto``: the session's open for an hour and longer, as
# brokers cut hourly bars of US stocks (09:30, 10:30, ...), the epoch below (the same bars for
# lengths that divide half an hour).
ANCHORS = ("auto", "session", "epoch")
_AUTO_SESSION_FROM_MS = 3_600_000


def parse_interval(
    name: str, market_tz: str, calendar: Calendar | None = None, anchor: str = "auto"
) -> Interval:
    """``"1m"``, ``"15m"``, ``"4h"``, ``"30s"`` or ``"1d"`` (market days), cut from
    ``calendar``'s sessions if given (``anchor``: one of ANCHORS)."""
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor {anchor!r} (one of {', '.join(ANCHORS)})")
    if name == "1d":
        return Interval(name, DAY_MS, ZoneInfo(market_tz), calendar)
    match = _SPEC.fullmatch(name)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"unknown candle interval {name!r} (examples: 30s, 1m, 15m, 1h, 1d)")
    ms = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms >= DAY_MS:
        raise ValueError(f"interval {name!r}: use 1d for daily candles")
    session = anchor == "session" or (anchor == "auto" and ms >= _AUTO_SESSION_FROM_MS)
    return Interval(name, ms, None, calendar, session)
