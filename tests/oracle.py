"""What the pipeline must produce, computed independently with pandas and ``ta``.

Used by unit tests (pure state) and integration tests (rows in Cassandra) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stockapp import history
from stockapp.history import ta_indicators  # noqa: F401 - the oracle's ta, for tests
from tables.intervals import parse_interval

INTRADAY_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


@dataclass(frozen=True)
class Tick:
    symbol: str
    ts: int  # epoch ms
    price: float
    volume: float


def day_window(ts: int, tz: str) -> tuple[int, int]:
    stamp = pd.Timestamp(ts, unit="ms", tz="UTC").tz_convert(tz)
    start = stamp.normalize()
    # Next local midnight (a day may last 23 or 25 hours).
    end = (start.tz_localize(None) + pd.Timedelta(days=1)).tz_localize(tz)
    return int(start.value // 1_000_000), int(end.value // 1_000_000)


def window_end(ts: int, interval: str, tz: str) -> int:
    if interval == "1d":
        return day_window(ts, tz)[1]
    size = INTRADAY_MS[interval]
    return ts - ts % size + size


def late_intervals(
    ticks: list[Tick], intervals: list[str], grace_ms: int, tz: str
) -> list[set[str]]:
    """For each tick in arrival order, the intervals it is late for (its window already closed
    because the symbol's latest event time minus grace had passed the window's end)."""
    latest: dict[str, int] = {}
    result = []
    for tick in ticks:
        seen = latest.get(tick.symbol)
        watermark = None if seen is None else seen - grace_ms
        result.append(
            {
                i
                for i in intervals
                if watermark is not None and window_end(tick.ts, i, tz) <= watermark
            }
        )
        latest[tick.symbol] = tick.ts if seen is None else max(seen, tick.ts)
    return result


def expected_candles(ticks: list[Tick], interval: str, tz: str) -> pd.DataFrame:
    """One row per (symbol, start): OHLCV, trades, indicators and session VWAP, computed with
    pandas and ta by :mod:`stockapp.history`; ``ticks`` are those accepted for ``interval``."""
    quotes = [{"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume} for t in ticks]
    return history.candles(quotes, parse_interval(interval, tz), tz)


def assert_close_or_null(ours: float | None, theirs: float, where: object) -> None:
    """Our value equals the oracle's within 1e-9, and is null exactly where it is NaN."""
    import math

    if math.isnan(theirs):
        assert ours is None, f"{where}: expected null, got {ours}"
    else:
        assert ours is not None, f"{where}: expected {theirs}, got null"
        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9), (where, ours, theirs)
