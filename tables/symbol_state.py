"""Everything the pipeline knows about one symbol, and how each quote changes it.

One object per symbol holds the forming candles of every interval, the indicator state, the
symbol's event-time watermark and the offset of the last record applied. It is stored as one
table value, so a crash can never leave candles, indicators and the replay guard out of step.

Rules (docs/streaming.md):
- watermark = latest event time seen for the symbol - grace (bars count at their end);
  the timer may push it further for live or idle symbols (:meth:`advance`).
- a candle closes when the watermark reaches its end; closing feeds the indicators.
- a quote whose window has already closed for an interval is *late* for that interval:
  it changes nothing there and the caller sends it to the late topic.
- a record at or below ``last_offset`` has been applied already (a replay after a crash);
  in a packed record (many quotes), so has each element up to ``last_index`` of the record
  at ``last_offset``.
- ids of recent quotes are remembered, bounded (tables/quote_ids.py): a resend is a repeat, a
  bar sent again with other values a revision, and a quote whose id may have been forgotten is
  late for every interval.

Everything the state holds is bounded by the settings, whatever the feed: the forming candles
by the intervals and the grace period, the indicators by their windows, the ids by
tables/quote_ids.py, the rules' state by the rules' limits (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockapp.tables.candle import Bar, Candle, Settled, rebuilt
from stockapp.tables.indicators import IndicatorSet, Sample, Values
from stockapp.tables.indicators.registry import DEFAULT_SET, IndicatorDef
from stockapp.tables.intervals import Interval, parse_interval
from stockapp.tables.quote_ids import (
    ID_HORIZON_MS,
    BarIds,
    KeptBar,
    TickIds,
    bar_digest,
    digest,
    end_of,
)
from stockapp.tables.sessions import Calendar, Session

if TYPE_CHECKING:
    from stockapp.settings import Settings

# The layout of to_dict(); states without it (written before ids were bounded) still load.
STATE_VERSION = 2


@dataclass(frozen=True)
class CandleSpec:
    intervals: tuple[Interval, ...]
    day: Interval  # market days: VWAP sessions
    grace_ms: int
    indicators: tuple[IndicatorDef, ...] = DEFAULT_SET  # every interval's, in order
    calendar: Calendar | None = None  # the exchange's sessions (None: always open)

    @classmethod
    def build(
        cls,
        names: tuple[str, ...],
        market_tz: str,
        grace_seconds: float,
        indicators: tuple[IndicatorDef, ...] = DEFAULT_SET,
        calendar: Calendar | None = None,
        anchor: str = "auto",
    ) -> CandleSpec:
        """``calendar``: the sessions candles are cut from (None: always open, the epoch and
        midnight in ``market_tz``); ``anchor``: STOCKAPP_INTRADAY_ANCHOR."""
        return cls(
            tuple(parse_interval(n, market_tz, calendar, anchor) for n in names),
            parse_interval("1d", market_tz, calendar),
            int(grace_seconds * 1000),
            indicators,
            calendar,
        )

    @classmethod
    def of(cls, settings: Settings) -> CandleSpec:
        """The spec a worker runs with ``settings``."""
        return cls.build(
            settings.intervals,
            settings.market_timezone,
            settings.grace_seconds,
            settings.indicator_set,
            settings.calendar,
            settings.intraday_anchor,
        )

    def session(self, ts: int) -> Session:
        """The session of a quote at ``ts`` (the regular one when always open)."""
        return Session.REGULAR if self.calendar is None else self.calendar.session(ts)


@dataclass
class Applied:
    duplicate: bool = False
    repeat: bool = False  # a duplicate by its quote id (a resend), not by its offset
    revised: bool = False  # a bar sent again with other values: it replaced the earlier one
    late: tuple[str, ...] = ()  # intervals whose candle had closed already
    # Its id is older than the ids kept: it cannot be told from a resend, so it is late for
    # every interval (``late`` names them all).
    expired: bool = False
    # Outside the sessions that count (STOCKAPP_SESSION_HOURS): in no candle, not late.
    outside: bool = False
    session: str | None = None  # the session it fell in (set for a quote applied)


def _stored(bar: Bar, seq: int) -> list[float]:
    return [bar.ts, bar.span_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, seq]


def _legacy_key(quote_id: str, stored: list[float] | int) -> str:
    """A bar kept by an older state, keyed as bars are now (by id, start and length); one
    kept without its values (an int: its end) by id alone, which no bar arriving now has."""
    if isinstance(stored, int):
        return digest(quote_id)
    return bar_digest(quote_id, int(stored[0]), int(stored[1]))


def _bar_of(kept: list[float]) -> Bar:
    ts, span_ms, open_, high, low, close, volume = kept[:7]
    return Bar.ohlc(int(ts), open_, high, low, close, volume, int(span_ms) // 1000)


class SymbolState:
    def __init__(
        self,
        symbol: str,
        spec: CandleSpec,
        restored: dict[str, IndicatorSet] | None = None,
    ) -> None:
        """A new symbol's state; ``restored``: indicator sets by interval, decoded from a
        stored state (from_dict), in place of fresh ones."""
        self.symbol = symbol
        self.spec = spec
        self.last_offset = -1
        self.last_index = 0  # the element of the record at last_offset applied last
        self.topic_id: str | None = None  # the quotes topic's id that last_offset refers to
        self.seq = 0  # quotes applied so far: each one's arrival sequence number
        self.tick_ids = TickIds()
        # Recent bars by id, as last applied: what a revision is compared with, and what a
        # candle holding revisable bars is rebuilt from.
        self.bar_ids = BarIds()
        self.event_max: int | None = None
        self.watermark: int | None = None
        self.forming: dict[str, dict[int, Candle]] = {i.name: {} for i in spec.intervals}
        # By interval and start, the part of each forming candle that holds revisable bars
        # which no revision can change (see tables/candle.Settled); absent: no revisable bar.
        self.settled: dict[str, dict[int, Settled]] = {i.name: {} for i in spec.intervals}
        restored = restored or {}
        self.indicators: dict[str, IndicatorSet] = {
            i.name: restored[i.name] if i.name in restored else IndicatorSet(spec.indicators)
            for i in spec.intervals
        }
        # Signal rules' state by rule key (tables/signals/book.py), moved on by closed candles;
        # and the forming candle each provisional rule last fired on (at most once per candle).
        self.rules: dict[str, object] = {}
        self.marks: dict[str, int] = {}

    # -- changes -----------------------------------------------------------------------------

    def follow_topic(self, topic_id: str) -> bool:
        """Offsets are per topic incarnation: a state built on a topic that was deleted and
        created again forgets its replay guard (the new topic's offsets start again at 0);
        candles and indicators go on. True if the guard was reset."""
        if self.topic_id == topic_id:
            return False
        reset = self.topic_id is not None
        if reset:
            self.last_offset, self.last_index = -1, 0
        self.topic_id = topic_id
        return reset

    def apply(
        self,
        bar: Bar,
        offset: int,
        closed: list[Candle],
        quote_id: str | None = None,
        index: int = 0,
    ) -> Applied:
        """Fold one quote's bar in; candles it closes are appended to ``closed``. A quote at
        or below the replay guard (``offset``, and ``index`` in a packed record), or whose
        ``quote_id`` was seen recently, changes nothing."""
        last = self.last_offset
        if offset < last or (offset == last and index <= self.last_index):
            return Applied(duplicate=True)
        self.last_offset, self.last_index = offset, index
        revised = False
        revisable = quote_id is not None and bar.span_ms > 0
        key = None
        if quote_id is not None:
            key = bar_digest(quote_id, bar.ts, bar.span_ms) if revisable else digest(quote_id)
            horizon = None if self.watermark is None else self.watermark - ID_HORIZON_MS
            if revisable:
                if self.bar_ids.expired(bar.end, horizon):
                    return self._expired()
                earlier = self.bar_ids.get(key)
                if earlier is None and self.bar_ids.by_id_alone:
                    earlier = self.bar_ids.get(digest(quote_id))  # kept by an older state
                if earlier is not None:
                    if isinstance(earlier, int) or _bar_of(earlier) == bar:
                        return Applied(duplicate=True, repeat=True)
                    self._withdraw(key, earlier)
                    revised = True
            else:
                if self.tick_ids.expired(bar.ts, horizon):
                    return self._expired()
                if key in self.tick_ids:
                    return Applied(duplicate=True, repeat=True)
                self.tick_ids.add(key, bar.ts)
        seq = self.seq
        self.seq += 1
        ts = bar.ts
        late = []
        outside = False
        watermark = self.watermark
        for interval in self.spec.intervals:
            window = interval.window(ts)
            if window is None:  # the same calendar for every interval: outside in all
                outside = True
                break
            start, end = window
            if watermark is not None and end <= watermark:
                late.append(interval.name)
                continue
            if bar.end > end:  # a bar longer than this interval's candle does not fit in it
                continue
            forming = self.forming[interval.name]
            candle = forming.get(start)
            if candle is None:
                forming[start] = Candle.first(self.symbol, interval.name, start, end, bar)
                if revisable:
                    self.settled[interval.name][start] = Settled()
                continue
            parts = self.settled[interval.name]
            part = parts.get(start)
            if revisable:
                if part is None:  # the candle's first revisable bar: the rest is settled
                    parts[start] = Settled.of(candle)
            elif part is not None:
                part.merge(bar, seq)
            candle.merge(bar)
        if key is not None and revisable:
            self.bar_ids.put(key, _stored(bar, seq))
            for kept in self.bar_ids.overflow():
                self._settle(kept)
        event_end = bar.end
        if self.event_max is None or event_end > self.event_max:
            self.event_max = event_end
            self.advance(event_end - self.spec.grace_ms, closed)
        return Applied(
            revised=revised, late=tuple(late), outside=outside, session=self.spec.session(ts)
        )

    def _expired(self) -> Applied:
        return Applied(late=tuple(i.name for i in self.spec.intervals), expired=True)

    def _withdraw(self, key: str, earlier: list[float]) -> None:
        """Take a bar's earlier version out of the candles still forming (its revision is
        applied next; candles that closed keep it, and the revision is late there): each is
        rebuilt exactly from its settled part and its other revisable bars."""
        self.bar_ids.remove(key)
        old = _bar_of(earlier)
        for interval in self.spec.intervals:
            name = interval.name
            window = interval.window(old.ts)
            if window is None:  # it counted nowhere
                return
            start, end = window
            forming = self.forming[name]
            if start not in forming or old.end > end:
                continue
            parts = self.settled[name]
            part = parts.get(start)
            if part is None:  # the candle holds no revisable bar: not this one either
                continue
            held = [
                (bar, int(kept[7]))
                for kept in self.bar_ids.values()
                if start <= kept[0] < end and kept[0] + kept[1] <= end
                for bar in (_bar_of(kept),)
            ]
            candle = rebuilt(part, held, self.symbol, name, start, end)
            if candle is None:
                del forming[start]
            else:
                forming[start] = candle
            if not held:
                del parts[start]

    def _settle(self, kept: KeptBar) -> None:
        """A bar whose id is forgotten can no longer be revised: it joins the settled part
        of each candle still forming that holds it."""
        if isinstance(kept, int):  # kept by an older state: already in the settled part
            return
        bar, seq = _bar_of(kept), int(kept[7])
        for interval in self.spec.intervals:
            name = interval.name
            window = interval.window(bar.ts)
            if window is None:
                return
            start, end = window
            candle = self.forming[name].get(start)
            part = self.settled[name].get(start)
            if candle is None or part is None or bar.end > end:
                continue
            part.merge(bar, seq)
            if part.trades >= candle.trades:  # nothing revisable left in it
                del self.settled[name][start]

    def advance(self, watermark: int, closed: list[Candle]) -> None:
        """Move the watermark forward (never back) and close the candles it passes."""
        if self.watermark is not None and watermark <= self.watermark:
            return
        self.watermark = watermark
        horizon = watermark - ID_HORIZON_MS
        self.tick_ids.forget(horizon)
        for kept in self.bar_ids.expire(horizon):
            self._settle(kept)
        for interval in self.spec.intervals:
            forming = self.forming[interval.name]
            if not forming:
                continue
            parts = self.settled[interval.name]
            for start in sorted(forming):
                candle = forming[start]
                if candle.end > watermark:
                    break
                del forming[start]
                parts.pop(start, None)
                candle.closed = True
                candle.indicators = self.indicators[interval.name].add(self._sample(candle))
                closed.append(candle)

    def close_all(self, closed: list[Candle]) -> None:
        """Close every forming candle (the symbol went quiet after a replay)."""
        ends = [c.end for forming in self.forming.values() for c in forming.values()]
        if ends:
            self.advance(max(ends), closed)

    # -- views -------------------------------------------------------------------------------

    def _sample(self, candle: Candle) -> Sample:
        day = self.spec.day.window(candle.start)
        # A candle's start is in a counted session: its day is where VWAP starts again.
        session = day[0] if day is not None else candle.start
        return Sample(candle.close, candle.pv, candle.volume, session)

    def provisional(self, candle: Candle) -> Values:
        """Indicator values the forming candle would get if it closed now."""
        return self.indicators[candle.interval].peek(self._sample(candle))

    def forming_candles(self, interval: str | None = None) -> list[Candle]:
        names = [interval] if interval else list(self.forming)
        return [c for name in names for _, c in sorted(self.forming.get(name, {}).items())]

    @property
    def has_forming(self) -> bool:
        return any(self.forming.values())

    @property
    def first_end(self) -> int | None:
        """The end of the forming candle that closes first (None: nothing forming)."""
        ends = [forming[min(forming)].end for forming in self.forming.values() if forming]
        return min(ends) if ends else None

    # -- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "symbol": self.symbol,
            "last_offset": self.last_offset,
            "last_index": self.last_index,
            "topic_id": self.topic_id,
            "seq": self.seq,
            "tick_ids": self.tick_ids.entries,
            "tick_floor": self.tick_ids.floor,
            "bars": self.bar_ids.entries,
            "bar_floor": self.bar_ids.floor,
            "event_max": self.event_max,
            "watermark": self.watermark,
            "intervals": {
                name: {
                    "forming": [c.to_dict() for c in self.forming[name].values()],
                    "settled": [[start, *p.to_list()] for start, p in self.settled[name].items()],
                    "indicators": self.indicators[name].state(),
                }
                for name in self.forming
            },
            "rules": self.rules,
            "marks": self.marks,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], spec: CandleSpec) -> SymbolState:
        # Indicators are made once, restored (an interval configured since starts fresh).
        names = {i.name for i in spec.intervals}
        restored = {
            name: IndicatorSet.restored(stored["indicators"], spec.indicators)
            for name, stored in data["intervals"].items()
            if name in names
        }
        state = cls(data["symbol"], spec, restored)
        state.last_offset = data["last_offset"]
        # Absent in states written before packed records: their records held one quote each.
        state.last_index = data.get("last_index", 0)
        state.topic_id = data.get("topic_id")  # absent in states written before 0.2
        state.event_max = data["event_max"]
        state.watermark = data["watermark"]
        # Absent in states written before signals: the rules start afresh.
        state.rules = dict(data.get("rules") or {})
        state.marks = dict(data.get("marks") or {})
        current = data.get("v") == STATE_VERSION
        for name, stored in data["intervals"].items():
            if name not in state.forming:  # an interval no longer configured
                continue
            state.forming[name] = {c["start"]: Candle.from_dict(c) for c in stored["forming"]}
            if current:  # older states have no settled parts: their bars are never revised
                state.settled[name] = {
                    int(p[0]): Settled.from_list(p[1:])
                    for p in stored["settled"]
                    if p[0] in state.forming[name]
                }
        if current:
            state.seq = data["seq"]
            state.tick_ids = TickIds(dict(data["tick_ids"]), data["tick_floor"])
            state.bar_ids = BarIds(dict(data["bars"]), data["bar_floor"])
            if set(state.forming) - set(data["intervals"]):
                # An interval configured since: its candles may or may not hold the bars kept,
                # so those become known but no longer revisable (as in an older state).
                state.bar_ids = BarIds(
                    {k: end_of(b) for k, b in state.bar_ids.entries.items()},
                    state.bar_ids.floor,
                )
        else:
            # Written before ids were bounded: raw ids, bars without arrival sequence (and
            # maybe a day of them). Bars keep only their ends, known but never revised (the
            # candles hold them with no settled part); both memories are cut to their bounds.
            ticks = data.get("tick_ids") or {}
            state.tick_ids = TickIds({digest(i): ts for i, ts in ticks.items()})
            bars = data.get("bar_ids") or {}
            state.bar_ids = BarIds({_legacy_key(i, b): end_of(b) for i, b in bars.items()})
        state.tick_ids.trim()
        for kept in state.bar_ids.overflow():
            state._settle(kept)
        return state
