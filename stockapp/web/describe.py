"""What this deployment computes, as the API tells it: ``/api/meta`` for the chart, and the
OpenAPI document with the configured intervals and indicators filled in. Both follow the
indicator registry and the settings, so neither repeats their lists."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from stockapp.settings import Settings
from stockapp.tables.indicators.registry import KINDS

OPENAPI_TEMPLATE = Path(__file__).with_name("openapi.json")


def meta(settings: Settings) -> dict[str, Any]:
    return {
        "intervals": list(settings.intervals),
        "indicators": [d.describe() for d in settings.indicator_set],
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
