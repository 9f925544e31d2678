"""An OHLCV candle and how ticks and pre-aggregated bars merge into it.

Open and close follow event time, not arrival: the open is the earliest tick (the first to
arrive among equal times), the close the latest (the last to arrive among equal times), which
is exactly ``first``/``last`` of a pandas resample over ticks stably sorted by time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Candle:
        return cls(**data)


def new_candle(
    symbol: str,
    interval: str,
    start: int,
    end: int,
    ts: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    pv: float,
) -> Candle:
    return Candle(symbol, interval, start, end, open_, high, low, close, volume, 1, ts, ts, pv)


def merge(
    candle: Candle,
    ts: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    pv: float,
) -> None:
    """Fold one tick (open = high = low = close = price) or bar into ``candle`` in place."""
    if ts < candle.open_ts:
        candle.open, candle.open_ts = open_, ts
    if ts >= candle.close_ts:
        candle.close, candle.close_ts = close, ts
    if high > candle.high:
        candle.high = high
    if low < candle.low:
        candle.low = low
    candle.volume += volume
    candle.pv += pv
    candle.trades += 1
