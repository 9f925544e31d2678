"""The JSON shapes of the API (documented in openapi.json)."""

from __future__ import annotations

import calendar
import datetime as dt
import math
from typing import Any

from stockapp.tables.candle import Candle
from stockapp.tables.indicators import NAMES


def _num(value: float | None) -> float | None:
    # JSON has no NaN; a missing value is null.
    return None if value is None or not math.isfinite(value) else value


def candle_json(
    start_ms: int,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    closed: bool,
    indicators: dict[str, float | None],
) -> dict[str, Any]:
    return {
        "t": start_ms // 1000,
        "o": o,
        "h": h,
        "l": low,
        "c": c,
        "v": v,
        "closed": closed,
        "indicators": {name: _num(indicators.get(name)) for name in NAMES},
    }


def from_candle(candle: Candle, indicators: dict[str, float | None]) -> dict[str, Any]:
    return candle_json(
        candle.start,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.closed,
        indicators,
    )


def to_ms(value: dt.datetime) -> int:
    """The driver returns naive datetimes in UTC."""
    return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000


def from_row(row: Any) -> dict[str, Any]:
    return candle_json(
        to_ms(row.start),
        row.open,
        row.high,
        row.low,
        row.close,
        row.volume,
        bool(row.closed),
        {name: getattr(row, name) for name in NAMES},
    )
