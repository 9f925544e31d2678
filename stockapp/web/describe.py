"""What this deployment computes, as the API tells it: ``/api/meta`` for the chart, and the
OpenAPI document with the configured intervals and indicators filled in. Both follow the
indicator registry and the settings, so neither repeats their lists."""

from __future__ import annotations

import copy
import datetime as dt
import time
from pathlib import Path
from typing import Any

import orjson

from stockapp.settings import Settings
from stockapp.tables.indicators.registry import KINDS
from stockapp.tables.sessions import ALWAYS_OPEN, TradingDay

OPENAPI_TEMPLATE = Path(__file__).with_name("openapi.json")


# Days looked ahead for the next trading day (a long holiday weekend is four).
_LOOKAHEAD_DAYS = 10


def meta(settings: Settings, now_ms: int | None = None) -> dict[str, Any]:
    """What the chart needs to know: intervals, indicators, and the trading calendar with the
    exchange's sessions of today (its date) and of the next trading day."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    calendar = settings.calendar
    today = dt.datetime.fromtimestamp(now_ms / 1000, calendar.tz).date()
    days = calendar.days(today, today + dt.timedelta(days=_LOOKAHEAD_DAYS))
    return {
        "intervals": list(settings.intervals),
        "indicators": [d.describe() for d in settings.indicator_set],
        "exchange": settings.exchange,
        "always_open": settings.exchange == ALWAYS_OPEN,
        "timezone": str(calendar.tz),
        "session_hours": settings.session_hours,
        "session_now": calendar.session(now_ms).value,
        "sessions": [_day_json(d) for d in days[:2]],
    }


def _day_json(day: TradingDay) -> dict[str, Any]:
    def span(part: tuple[int, int] | None) -> list[int] | None:
        return None if part is None else [part[0] // 1000, part[1] // 1000]

    return {
        "date": day.date.isoformat(),
        "pre": span(day.pre),
        "regular": [span(p) for p in day.regular],
        "post": span(day.post),
    }


def openapi(settings: Settings) -> dict[str, Any]:
    doc = copy.deepcopy(orjson.loads(OPENAPI_TEMPLATE.read_bytes()))
    schemas = doc["components"]["schemas"]
    values = schemas["Candle"]["properties"]["indicators"]
    outputs = settings.indicator_outputs
    values["properties"] = {name: {"type": "number", "nullable": True} for name in outputs}
    values["required"] = list(outputs)
    kinds = schemas["Meta"]["properties"]["indicators"]["items"]["properties"]["kind"]
    kinds["enum"] = list(KINDS)
    for name in ("Rule", "RuleInput"):
        schemas[name]["properties"]["interval"]["enum"] = list(settings.intervals)
    for path in doc["paths"].values():
        for parameter in path.get("get", {}).get("parameters", []):
            if parameter["name"] == "interval":
                parameter["schema"]["enum"] = list(settings.intervals)
                if "default" in parameter["schema"]:  # candles: the first interval
                    parameter["schema"]["default"] = settings.intervals[0]
    return doc
