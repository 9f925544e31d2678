"""The API's description of the deployment follows the indicator registry and the settings,
and every indicator output has its column in the Cassandra schema."""

import re

from stockapp.db.migrate import load_migrations
from stockapp.settings import load_settings
from stockapp.tables.indicators.registry import DEFAULT_SET, NAMES
from stockapp.web import describe


def test_meta_lists_intervals_and_indicators_in_order():
    settings = load_settings().model_copy(update={"intervals": ("30s", "1m", "1d")})
    meta = describe.meta(settings)
    assert meta["intervals"] == ["30s", "1m", "1d"]
    assert [i["key"] for i in meta["indicators"]] == [d.key for d in DEFAULT_SET]
    assert [o for i in meta["indicators"] for o in i["outputs"]] == list(NAMES)
    macd = next(i for i in meta["indicators"] if i["kind"] == "macd")
    assert macd == {
        "key": "macd_12_26_9",
        "kind": "macd",
        "params": [12, 26, 9],
        "label": "MACD 12 26 9",
        "pane": "macd",
        "outputs": ["macd", "macd_signal", "macd_hist"],
    }


def test_openapi_document_is_filled_from_the_registry_and_settings():
    settings = load_settings().model_copy(update={"intervals": ("5m", "1h")})
    doc = describe.openapi(settings)
    values = doc["components"]["schemas"]["Candle"]["properties"]["indicators"]
    assert values["required"] == list(NAMES) and set(values["properties"]) == set(NAMES)
    for path in ("/api/candles/{symbol}", "/api/live/{symbol}"):
        (interval,) = [
            p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "interval"
        ]
        assert interval["schema"]["enum"] == ["5m", "1h"] and interval["schema"]["default"] == "5m"


def test_every_indicator_output_has_a_candles_column():
    cql = " ".join(m.text for m in load_migrations())
    table = re.search(r"CREATE TABLE IF NOT EXISTS candles \((.*?)PRIMARY KEY", cql, re.S | re.I)
    assert table, "candles table not found in the migrations"
    columns = set(re.findall(r"^\s*(\w+)\s+double", table.group(1), re.M))
    assert set(NAMES) <= columns
