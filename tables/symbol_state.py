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
"""

from __future__ import annotations

from dataclasses import dataclass

from stockapp.tables.candle import Bar, Candle
from stockapp.tables.indicators import IndicatorSet, Sample, Values
from stockapp.tables.indicators.registry import DEFAULT_SET, IndicatorDef
from stockapp.tables.intervals import Interval, parse_interval

# Ids of ticks are kept this far behind the symbol's event time (a producer's resend comes
# within its delivery timeout, minutes), and at most this many: enough for any resend, bounded
# whatever the rate. Ids of bars are kept until every candle they could count in has closed.
TICK_ID_HORIZON_MS = 15 * 60_000
TICK_IDS_MAX = 4096


@dataclass(frozen=True)
class CandleSpec:
    intervals: tuple[Interval, ...]
    day: Interval  # market days: VWAP sessions
    grace_ms: int
    indicators: tuple[IndicatorDef, ...] = DEFAULT_SET  # every interval's, in order

    @classmethod
    def build(
        cls,
        names: tuple[str, ...],
        market_tz: str,
        grace_seconds: float,
        indicators: tuple[IndicatorDef, ...] = DEFAULT_SET,
    ) -> CandleSpec:
        return cls(
            tuple(parse_interval(n, market_tz) for n in names),
            parse_interval("1d", market_tz),
            int(grace_seconds * 1000),
            indicators,
        )


@dataclass
class Applied:
    duplicate: bool = False
    repeat: bool = False  # a duplicate by its quote id (a resend), not by its offset
    revised: bool = False  # a bar sent again with other values: it replaced the earlier one
    late: tuple[str, ...] = ()  # intervals whose candle had closed already


# A bar as kept under its id: [ts, span_ms, open, high, low, close, volume]. States written
# before revisions were supported kept the bar's end (an int) instead: such a bar is known,
# its values are not.
StoredBar = list[float] | int


def _stored(bar: Bar) -> list[float]:
    return [bar.ts, bar.span_ms, bar.open, bar.high, bar.low, bar.close, bar.volume]


def _bar_of(stored: StoredBar) -> Bar | None:
    if isinstance(stored, int):
        return None
    ts, span_ms, open_, high, low, close, volume = stored
    return Bar.ohlc(int(ts), open_, high, low, close, volume, int(span_ms) // 1000)


def _bar_end(stored: StoredBar) -> int:
    return stored if isinstance(stored, int) else int(stored[0] + stored[1])


class SymbolState:
    def __init__(self, symbol: str, spec: CandleSpec) -> None:
        self.symbol = symbol
        self.spec = spec
        self.last_offset = -1
        self.last_index = 0  # the element of the record at last_offset applied last
        self.topic_id: str | None = None  # the quotes topic's id that last_offset refers to
        self.tick_ids: dict[str, int] = {}  # recent tick ids -> event time, oldest first
        # bar ids -> the bar (as last applied), while a candle may hold it: what a revision
        # of the bar is compared with, and what a candle holding it is rebuilt from.
        self.bar_ids: dict[str, StoredBar] = {}
        self.event_max: int | None = None
        self.watermark: int | None = None
        self.forming: dict[str, dict[int, Candle]] = {i.name: {} for i in spec.intervals}
        self.indicators: dict[str, IndicatorSet] = {
            i.name: IndicatorSet(spec.indicators) for i in spec.intervals
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
        if quote_id is not None and bar.span_ms:
            earlier = self.bar_ids.get(quote_id)
            if earlier is not None:
                if isinstance(earlier, int) or _bar_of(earlier) == bar:
                    return Applied(duplicate=True, repeat=True)
                self._withdraw(quote_id, earlier)
                revised = True
            self.bar_ids[quote_id] = _stored(bar)
        elif quote_id is not None:
            if quote_id in self.tick_ids:
                return Applied(duplicate=True, repeat=True)
            self.tick_ids[quote_id] = bar.end
        ts = bar.ts
        late = []
        watermark = self.watermark
        for interval in self.spec.intervals:
            start, end = interval.window(ts)
            if watermark is not None and end <= watermark:
                late.append(interval.name)
                continue
            if bar.end > end:  # a bar longer than this interval's candle does not fit in it
                continue
            forming = self.forming[interval.name]
            candle = forming.get(start)
            if candle is None:
                forming[start] = Candle.first(self.symbol, interval.name, start, end, bar)
            else:
                candle.merge(bar)
        event_end = bar.end
        if self.event_max is None or event_end > self.event_max:
            self.event_max = event_end
            self.advance(event_end - self.spec.grace_ms, closed)
        return Applied(revised=revised, late=tuple(late))

    def _withdraw(self, quote_id: str, earlier: list[float]) -> None:
        """Take a bar's earlier version out of the candles still forming (a revision replaces
        it; candles that closed keep it, and the revision is late there). A candle made only
        of bars with ids is rebuilt from them, exactly; one that also holds ticks gets the
        earlier bar's volume and VWAP sum taken out and open/close re-read where that bar set
        them, but its high and low cannot narrow (the ticks are not kept)."""
        old = _bar_of(earlier)
        assert old is not None
        del self.bar_ids[quote_id]
        for interval in self.spec.intervals:
            start, end = interval.window(old.ts)
            forming = self.forming[interval.name]
            candle = forming.get(start)
            if candle is None or old.end > end:
                continue
            held = [
                b
                for b in map(_bar_of, self.bar_ids.values())
                if b is not None and start <= b.ts and b.end <= end
            ]
            if len(held) == candle.trades - 1:  # every other contribution is a known bar
                if held:
                    forming[start] = Candle.of(self.symbol, interval.name, start, end, held)
                else:
                    del forming[start]
            else:
                candle.withdraw(old)

    def advance(self, watermark: int, closed: list[Candle]) -> None:
        """Move the watermark forward (never back) and close the candles it passes."""
        if self.watermark is not None and watermark <= self.watermark:
            return
        self.watermark = watermark
        self._forget_ids(watermark)
        for interval in self.spec.intervals:
            forming = self.forming[interval.name]
            if not forming:
                continue
            for start in sorted(forming):
                candle = forming[start]
                if candle.end > watermark:
                    break
                del forming[start]
                candle.closed = True
                candle.indicators = self.indicators[interval.name].add(self._sample(candle))
                closed.append(candle)

    def _forget_ids(self, watermark: int) -> None:
        ticks = self.tick_ids
        while ticks and (
            len(ticks) > TICK_IDS_MAX or next(iter(ticks.values())) < watermark - TICK_ID_HORIZON_MS
        ):
            del ticks[next(iter(ticks))]
        if self.bar_ids:
            # A bar ending before the oldest forming candle starts can only be late now.
            starts = [start for forming in self.forming.values() for start in forming]
            oldest = min(starts) if starts else watermark
            self.bar_ids = {i: b for i, b in self.bar_ids.items() if _bar_end(b) > oldest}

    def close_all(self, closed: list[Candle]) -> None:
        """Close every forming candle (the symbol went quiet after a replay)."""
        ends = [c.end for forming in self.forming.values() for c in forming.values()]
        if ends:
            self.advance(max(ends), closed)

    # -- views -------------------------------------------------------------------------------

    def _sample(self, candle: Candle) -> Sample:
        session = self.spec.day.window(candle.start)[0]
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

    def to_dict(self) -> dict:
        return {
            "symbol": self.symbol,
            "last_offset": self.last_offset,
            "last_index": self.last_index,
            "topic_id": self.topic_id,
            "tick_ids": self.tick_ids,
            "bar_ids": self.bar_ids,
            "event_max": self.event_max,
            "watermark": self.watermark,
            "intervals": {
                name: {
                    "forming": [c.to_dict() for c in self.forming[name].values()],
                    "indicators": self.indicators[name].state(),
                }
                for name in self.forming
            },
            "rules": self.rules,
            "marks": self.marks,
        }

    @classmethod
    def from_dict(cls, data: dict, spec: CandleSpec) -> SymbolState:
        state = cls(data["symbol"], spec)
        state.last_offset = data["last_offset"]
        # Absent in states written before packed records: their records held one quote each.
        state.last_index = data.get("last_index", 0)
        state.topic_id = data.get("topic_id")  # absent in states written before 0.2
        state.tick_ids = dict(data.get("tick_ids") or {})
        state.bar_ids = dict(data.get("bar_ids") or {})
        state.event_max = data["event_max"]
        state.watermark = data["watermark"]
        # Absent in states written before signals: the rules start afresh.
        state.rules = dict(data.get("rules") or {})
        state.marks = dict(data.get("marks") or {})
        for name, stored in data["intervals"].items():
            if name not in state.forming:  # an interval no longer configured
                continue
            state.forming[name] = {c["start"]: Candle.from_dict(c) for c in stored["forming"]}
            state.indicators[name] = IndicatorSet.restored(stored["indicators"], spec.indicators)
        return state
