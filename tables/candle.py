"""An OHLCV candle, the bar a quote contributes to it, and how bars merge into candles.

Open and close follow event time, not arrival: the open is the earliest tick (the first to
arrive among equal times), the close the latest (the last to arrive among equal times), which
is exactly ``first``/``last`` of a pandas resample over ticks stably sorted by time.

A trade that the tape's rules keep out of the last sale price (an average-price or an
out-of-sequence print, docs/sources.md) is a *volume-only* bar (``priced`` false): it adds its
volume, its price x volume and a trade to the candle, and sets none of open, high, low or
close, unless the candle holds nothing else: a window whose only trades are volume-only takes
its prices from them, the only prices there are. Its first priced trade replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Bar:
    """What one quote adds to a candle. A tick is a bar of length 0 with
    open = high = low = close = price; a pre-aggregated bar covers ``[ts, ts + span_ms)``."""

    ts: int  # event time, epoch ms
    open: float
    high: float
    low: float
    close: float
    volume: float
    pv: float  # price x volume (typical price (h + l + c) / 3 for bars), for VWAP
    span_ms: int = 0
    priced: bool = True  # False: a volume-only trade (see the module's docstring)

    @classmethod
    def tick(cls, ts: int, price: float, volume: float, priced: bool = True) -> Bar:
        return cls(ts, price, price, price, price, volume, price * volume, 0, priced)

    @classmethod
    def ohlc(
        cls,
        ts: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        seconds: int,
    ) -> Bar:
        typical = (high + low + close) / 3.0
        return cls(ts, open, high, low, close, volume, typical * volume, seconds * 1000)

    @property
    def end(self) -> int:
        """Event time the bar reaches (a tick: its own time)."""
        return self.ts + self.span_ms


@dataclass(slots=True)
class Candle:
    symbol: str
    interval: str
    start: int  # epoch ms, inclusive
    end: int  # epoch ms, exclusive
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    open_ts: int  # event time of the tick that set ``open``
    close_ts: int  # event time of the tick that set ``close``
    pv: float  # sum of price x volume (typical price for bars), for VWAP
    closed: bool = False
    indicators: dict[str, float | None] = field(default_factory=dict)
    # False while every trade in the candle is volume-only (the module's docstring).
    priced: bool = True

    @classmethod
    def first(cls, symbol: str, interval: str, start: int, end: int, bar: Bar) -> Candle:
        """A new candle of window ``[start, end)`` holding ``bar``."""
        return cls(
            symbol=symbol,
            interval=interval,
            start=start,
            end=end,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            trades=1,
            open_ts=bar.ts,
            close_ts=bar.ts,
            pv=bar.pv,
            priced=bar.priced,
        )

    @classmethod
    def of(cls, symbol: str, interval: str, start: int, end: int, bars: list[Bar]) -> Candle:
        """The candle of window ``[start, end)`` holding ``bars``, in arrival order."""
        candle = cls.first(symbol, interval, start, end, bars[0])
        for bar in bars[1:]:
            candle.merge(bar)
        return candle

    def merge(self, bar: Bar) -> None:
        """Fold one more tick or bar in."""
        if bar.priced and not self.priced:  # the first price of the tape's own
            self.open, self.open_ts = bar.open, bar.ts
            self.close, self.close_ts = bar.close, bar.ts
            self.high, self.low = bar.high, bar.low
            self.priced = True
        elif bar.priced or not self.priced:
            if bar.ts < self.open_ts:
                self.open, self.open_ts = bar.open, bar.ts
            if bar.ts >= self.close_ts:
                self.close, self.close_ts = bar.close, bar.ts
            if bar.high > self.high:
                self.high = bar.high
            if bar.low < self.low:
                self.low = bar.low
        self.volume += bar.volume
        self.pv += bar.pv
        self.trades += 1

    def to_dict(self) -> dict[str, Any]:
        # Spelled out rather than dataclasses.asdict, which deep-copies field by field
        # (docs/operations.md#problems-seen-and-fixed). Every field is immutable but
        # ``indicators``, whose values are floats or None, so a shallow copy of it is enough.
        data = {
            "symbol": self.symbol,
            "interval": self.interval,
            "start": self.start,
            "end": self.end,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "trades": self.trades,
            "open_ts": self.open_ts,
            "close_ts": self.close_ts,
            "pv": self.pv,
            "closed": self.closed,
            "indicators": dict(self.indicators),
        }
        if not self.priced:  # rare: the state of every other candle stays as it was
            data["priced"] = False
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candle:
        return cls(**data)


@dataclass(slots=True)
class Settled:
    """What a forming candle holds that no revision can change any more: its ticks, and bars
    whose ids were forgotten. Kept beside a candle that also holds revisable bars, so that a
    revision rebuilds the candle exactly: this part, then the revisable bars.

    Open and close carry the arrival sequence of the quote that set them (a per-symbol
    counter), since a rebuild merges out of arrival order: among equal times the open is the
    first to arrive and the close the last, as in a stable sort by time."""

    open: float = 0.0
    open_ts: int = 0
    open_seq: int = -1
    close: float = 0.0
    close_ts: int = 0
    close_seq: int = -1
    high: float = 0.0  # as open and close, meaningless while ``trades`` is 0
    low: float = 0.0
    volume: float = 0.0
    pv: float = 0.0
    trades: int = 0
    priced: bool = True  # as Candle.priced; meaningless while ``trades`` is 0

    @classmethod
    def of(cls, candle: Candle) -> Settled:
        """A candle's contents so far, all of which arrived before anything that comes next
        (sequence -1)."""
        return cls(
            candle.open,
            candle.open_ts,
            -1,
            candle.close,
            candle.close_ts,
            -1,
            candle.high,
            candle.low,
            candle.volume,
            candle.pv,
            candle.trades,
            candle.priced,
        )

    def merge(self, bar: Bar, seq: int) -> None:
        first = not self.trades or (bar.priced and not self.priced)
        if first:
            self.priced = bar.priced
        elif not bar.priced and self.priced:  # volume only
            self.volume += bar.volume
            self.pv += bar.pv
            self.trades += 1
            return
        if first or (bar.ts, seq) < (self.open_ts, self.open_seq):
            self.open, self.open_ts, self.open_seq = bar.open, bar.ts, seq
        if first or (bar.ts, seq) > (self.close_ts, self.close_seq):
            self.close, self.close_ts, self.close_seq = bar.close, bar.ts, seq
        if first or bar.high > self.high:
            self.high = bar.high
        if first or bar.low < self.low:
            self.low = bar.low
        self.volume += bar.volume
        self.pv += bar.pv
        self.trades += 1

    def candle(self, symbol: str, interval: str, start: int, end: int) -> Candle:
        return Candle(
            symbol,
            interval,
            start,
            end,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.trades,
            self.open_ts,
            self.close_ts,
            self.pv,
            priced=self.priced,
        )

    def to_list(self) -> list[Any]:
        data = [
            self.open,
            self.open_ts,
            self.open_seq,
            self.close,
            self.close_ts,
            self.close_seq,
            self.high,
            self.low,
            self.volume,
            self.pv,
            self.trades,
        ]
        if not self.priced:
            data.append(False)
        return data

    @classmethod
    def from_list(cls, data: list[Any]) -> Settled:
        return cls(*data)


def rebuilt(
    settled: Settled, bars: list[tuple[Bar, int]], symbol: str, interval: str, start: int, end: int
) -> Candle | None:
    """The candle of ``[start, end)`` holding ``settled`` and ``bars`` (each with its arrival
    sequence, in arrival order); None if both are empty."""
    part = replace(settled)
    for bar, seq in bars:
        part.merge(bar, seq)
    return part.candle(symbol, interval, start, end) if part.trades else None
