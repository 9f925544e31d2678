"""An OHLCV candle, the bar a quote contributes to it, and how bars merge into candles.

Open and close follow event time, not arrival: the open is the earliest tick (the first to
arrive among equal times), the close the latest (the last to arrive among equal times), which
is exactly ``first``/``last`` of a pandas resample over ticks stably sorted by time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def withdraw(self, bar: Bar) -> None:
        """Take out what ``bar`` added, as far as the candle's sums allow: volume, VWAP sum
        and count exactly; open/close go to the bar's replacement when it set them (the caller
        merges the replacement next); high and low stay (they cannot narrow without the other
        contributions)."""
        self.volume -= bar.volume
        self.pv -= bar.pv
        self.trades -= 1
        if self.open_ts == bar.ts:
            self.open_ts = bar.ts + 1  # the replacement (same time) sets the open again
        if self.close_ts == bar.ts:
            self.close_ts = bar.ts - 1

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

    def to_dict(self) -> dict:
        # Spelled out rather than dataclasses.asdict, which deep-copies field by field: it was
        # 7 % of a worker's time (docs/performance.md). Every field is immutable but
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
    def from_dict(cls, data: dict) -> Candle:
        return cls(**data)
