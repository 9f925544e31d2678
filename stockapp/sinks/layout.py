"""How rows are partitioned in Cassandra; shared by the writers and the readers."""

from __future__ import annotations

import datetime as dt

from stockapp.timestamps import ms_to_datetime

CANDLES_PER_PARTITION = 10_000


def candle_bucket(start_ms: int, interval_ms: int) -> int:
    """Partition bucket of a candle: at most 10,000 candles of one symbol/interval each."""
    return start_ms // (interval_ms * CANDLES_PER_PARTITION)


def quote_day(ts_ms: int) -> dt.date:
    """Partition day of a raw quote (UTC)."""
    return ms_to_datetime(ts_ms).date()


def quote_day_number(ts_ms: int) -> int:
    """The same day as days since 1970-01-01 (what the writer binds)."""
    return ts_ms // 86_400_000
