"""An OHLCV candle, the bar a quote contributes to it, and how bars merge into candles.

Open and close follow event time, not arrival: the open is the earliest tick (the first to
arrive among equal times), the close the latest (the last to arrive among equal times), which
is exactly ``first``/``last`` of a pandas resample over ticks stably sorted by time.
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

    @classmethod
    def tick(cls, ts: int, price: float, volume: float) -> Bar:
        return cls(ts, price, price, price, price, volume, price * volume)

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
        return {
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
        )

    def merge(self, bar: Bar, seq: int) -> None:
        first = not self.trades
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
        )

    def to_list(self) -> list[Any]:
        return [
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
