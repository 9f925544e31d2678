"""The JSON shapes of the API (documented in openapi.json)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from stockapp.settings import get_settings
from stockapp.tables.candle import Candle
from stockapp.timestamps import datetime_to_ms


def _num(value: float | None) -> float | None:
    # JSON has no NaN; a missing value is null.
    return None if value is None or not math.isfinite(value) else value


def session_of(interval: str, start_ms: int) -> str:
    """The session a candle belongs to: its start's (pre, regular, post) for an intraday
    candle; for a ``1d`` candle, what its day counts (``regular`` or ``extended``). A candle
    stored under another calendar can start in what this one calls ``closed``."""
    settings = get_settings()
    if settings.calendar.continuous:
        return "regular"
    if interval == "1d":
        return settings.session_hours
    return settings.calendar.session(start_ms).value


def candle_json(
    start_ms: int,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    closed: bool,
    indicators: dict[str, float | None],
    session: str,
) -> dict[str, Any]:
    return {
        "t": start_ms // 1000,
        "session": session,
        "o": o,
        "h": h,
        "l": low,
        "c": c,
        "v": v,
        "closed": closed,
        "indicators": {name: _num(value) for name, value in indicators.items()},
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
        session_of(candle.interval, candle.start),
    )


def from_row(row: Any, names: tuple[str, ...], interval: str) -> dict[str, Any]:
    """A stored candle of ``interval`` with the indicator columns ``names`` (the configured
    set's)."""
    start = datetime_to_ms(row.start)
    return candle_json(
        start,
        row.open,
        row.high,
        row.low,
        row.close,
        row.volume,
        bool(row.closed),
        {name: getattr(row, name) for name in names},
        session_of(interval, start),
    )


def encode_candle(candle: dict[str, Any]) -> bytes:
    """One candle object as the API sends it: what the candle cache keeps, so that a request
    it answers joins bytes instead of turning thousands of objects into JSON again."""
    return orjson.dumps(candle)


def candles_body(symbol: str, interval: str, candles: list[bytes]) -> bytes:
    """The ``/api/candles`` body from encoded candles: the same bytes as encoding the whole
    object (``{"symbol", "interval", "candles"}``) at once."""
    head = orjson.dumps({"symbol": symbol, "interval": interval})
    return b"".join((head[:-1], b',"candles":[', b",".join(candles), b"]}"))
