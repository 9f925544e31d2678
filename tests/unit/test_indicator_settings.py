"""STOCKAPP_INDICATORS: how a set is read and refused, and that the state, the sink, the API's
description and the rules follow the configured set, with values equal to ta's."""

import json

import pytest

from stockapp.settings import SettingsError, load_settings
from stockapp.sinks.cassandra import CassandraSink
from stockapp.tables.candle import Bar, Candle
from stockapp.tables.indicators.registry import (
    DEFAULT_SET,
    DEFAULT_SPEC,
    NAMES,
    parse_indicator,
    parse_indicators,
)
from stockapp.tables.signals import BUILT_IN, RuleError, built_in_for, parse_rule
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from stockapp.web import describe
from tests.oracle import DEFAULT_INDICATORS, Tick, assert_close_or_null, expected_candles
from tests.streams import generate_ticks
from tests.unit.test_cassandra_sink import Session

TZ = "America/New_York"
CUSTOM = "sma:5,sma:200,ema:9,ema:21,rsi:7,macd:5:35:5,bb:10:2.5,vwap"
START = 1_767_620_400_000  # 2026-01-05 13:40 UTC


def defs(setting: str):
    return parse_indicators(tuple(setting.split(",")))


def test_the_default_setting_is_the_default_set():
    assert parse_indicators(DEFAULT_SPEC) == DEFAULT_SET
    assert ",".join(DEFAULT_SPEC) == DEFAULT_INDICATORS
    assert load_settings().indicator_outputs == NAMES


@pytest.mark.parametrize(
    "text, key, outputs",
    [
        ("sma:200", "sma_200", ["sma_200"]),
        (" EMA:9 ", "ema_9", ["ema_9"]),
        ("rsi", "rsi_14", ["rsi_14"]),
        ("rsi:7", "rsi_7", ["rsi_7"]),
        ("macd", "macd_12_26_9", ["macd", "macd_signal", "macd_hist"]),
        ("macd:5:35:5", "macd_5_35_5", ["macd_5_35_5", "macd_signal_5_35_5", "macd_hist_5_35_5"]),
        ("bb", "bb_20_2", ["bb_upper", "bb_middle", "bb_lower"]),
        ("bb:20:2.0", "bb_20_2", ["bb_upper", "bb_middle", "bb_lower"]),
        ("bb:10:2.5", "bb_10_2p5", ["bb_upper_10_2p5", "bb_middle_10_2p5", "bb_lower_10_2p5"]),
        ("vwap", "vwap", ["vwap"]),
    ],
)
def test_items_are_read_with_their_usual_parameters_and_documented_names(text, key, outputs):
    indicator = parse_indicator(text)
    assert (indicator.key, list(indicator.outputs)) == (key, outputs)
    assert parse_indicator(indicator.spec) == indicator  # the spec reads back as itself


@pytest.mark.parametrize(
    "value, message",
    [
        ("sma:20,stoch:14", "'stoch' is not an indicator"),
        ("sma", "sma is written sma:window"),
        ("sma:0", "window '0' is not a whole number in 1..1000"),
        ("ema:1001", "window '1001' is not a whole number in 1..1000"),
        ("rsi:7.5", "window '7.5' is not a whole number"),
        ("bb:20:0", "deviations '0' is not a number with at most 3 decimals in 0.1..10"),
        ("bb:20:2.0001", "at most 3 decimals"),
        ("macd:26:12:9", "the fast window must be shorter than the slow one"),
        ("vwap:5", "vwap is written vwap"),
        ("sma:20,sma:20", "sma:20 and sma:20 both give 'sma_20'"),
        ("bb,bb:20:2.0", "both give 'bb_upper'"),
        (",", "names no indicator"),
        (",".join(f"sma:{n}" for n in range(1, 66)), "more than 64"),
    ],
)
def test_bad_settings_are_refused_in_one_line(monkeypatch, value, message):
    monkeypatch.setenv("STOCKAPP_INDICATORS", value)
    with pytest.raises(SettingsError, match="STOCKAPP_INDICATORS=") as caught:
        load_settings()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_setting_is_kept_in_its_canonical_form(monkeypatch):
    monkeypatch.setenv("STOCKAPP_INDICATORS", " rsi , BB:10:1.50,sma:3 ")
    settings = load_settings()
    assert settings.indicators == ("rsi:14", "bb:10:1.5", "sma:3")
    assert settings.indicator_outputs == (
        "rsi_14",
        "bb_upper_10_1p5",
        "bb_middle_10_1p5",
        "bb_lower_10_1p5",
        "sma_3",
    )


def ticks(n: int, seed: int) -> list[Tick]:
    return generate_ticks(
        n, ["AAPL", "MSFT"], seed=seed, start_ms=START, mean_gap_ms=3000, jitter_ms=2000
    )


def stream(
    spec: CandleSpec, stream_ticks: list[Tick], states: dict | None = None, first: int = 0
) -> list:
    states = {} if states is None else states
    closed: list[Candle] = []
    for offset, t in enumerate(stream_ticks, start=first):
        state = states.get(t.symbol) or SymbolState(t.symbol, spec)
        state.apply(Bar.tick(t.ts, t.price, t.volume), offset, closed)
        states[t.symbol] = state
    return closed


@pytest.mark.parametrize("setting", [CUSTOM, "rsi:2,bb:3:1.25,macd:2:3:2"])
def test_the_stream_gives_the_configured_indicators_equal_to_ta(setting):
    spec = CandleSpec.build(("1m",), TZ, 5, defs(setting))
    data = ticks(12_000, 3)
    closed = stream(spec, data)
    expected = expected_candles(data, "1m", TZ, setting)
    want = {(r["symbol"], int(r["start"])): r for _, r in expected.iterrows()}
    outputs = {n for d in defs(setting) for n in d.outputs}
    assert len(closed) > 300
    for candle in closed:
        row = want[(candle.symbol, candle.start)]
        assert set(candle.indicators) == outputs
        for name, value in candle.indicators.items():
            assert_close_or_null(value, row[name], (candle.symbol, candle.start, name))


def test_a_changed_set_carries_the_indicators_both_have_and_warms_up_the_new_ones():
    """A worker restarted with another set: sma_20 goes on as if nothing changed; sma_5 (new)
    starts at the restart and equals ta over the candles since; ema_12 (dropped) is gone."""
    before = CandleSpec.build(("1m",), TZ, 5)
    after = CandleSpec.build(("1m",), TZ, 5, defs("sma:20,sma:5"))
    data = [t for t in ticks(8000, 4) if t.symbol == "AAPL"]
    cut = len(data) // 2
    states: dict = {}
    first = stream(before, data[:cut], states)
    states = {
        s: SymbolState.from_dict(json.loads(json.dumps(st.to_dict())), after)
        for s, st in states.items()
    }
    second = stream(after, data[cut:], states, first=cut)
    full = expected_candles(data, "1m", TZ, "sma:20,sma:5")
    by_start = {int(r["start"]): r for _, r in full.iterrows()}
    restart = second[0].start
    since = expected_candles([t for t in data if t.ts >= restart], "1m", TZ, "sma:5")
    fresh = {int(r["start"]): r for _, r in since.iterrows()}
    assert len(first) > 50 and len(second) > 50
    for candle in second:
        assert set(candle.indicators) == {"sma_20", "sma_5"}
        assert_close_or_null(candle.indicators["sma_20"], by_start[candle.start]["sma_20"], 1)
        assert_close_or_null(candle.indicators["sma_5"], fresh[candle.start]["sma_5"], 2)


def test_built_in_rules_follow_the_configured_series_and_intervals():
    assert built_in_for(("1m", "5m"), NAMES) == BUILT_IN
    outputs = [n for d in defs("sma:10,rsi:14,bb") for n in d.outputs]
    kept = {s.name for s in built_in_for(("5m",), outputs)}
    assert kept == {
        "rsi_overbought",
        "rsi_oversold",
        "bb_break_up",
        "bb_break_down",
        "breakout_20_up",
        "breakout_20_down",
    }
    assert built_in_for(("1m",), NAMES) == ()  # the built-in rules are on 5m candles


def test_rules_name_only_the_configured_series():
    outputs = [n for d in defs(CUSTOM) for n in d.outputs]
    rule = {"name": "x", "kind": "crosses_above", "left": "ema_9", "right": "ema_21"}
    assert parse_rule({**rule, "interval": "1m"}, ("1m",), outputs).series == {"ema_9", "ema_21"}
    with pytest.raises(RuleError, match="left: 'sma_20' is not a series"):
        parse_rule({**rule, "left": "sma_20", "interval": "1m"}, ("1m",), outputs)


def test_the_api_description_follows_the_setting(monkeypatch):
    monkeypatch.setenv("STOCKAPP_INDICATORS", CUSTOM)
    settings = load_settings()
    meta = describe.meta(settings)
    assert [i["key"] for i in meta["indicators"]] == [
        "sma_5",
        "sma_200",
        "ema_9",
        "ema_21",
        "rsi_7",
        "macd_5_35_5",
        "bb_10_2p5",
        "vwap",
    ]
    bb = meta["indicators"][6]
    assert (bb["label"], bb["params"], bb["pane"]) == ("Bollinger 10 2.5", [10, 2.5], "price")
    values = describe.openapi(settings)["components"]["schemas"]["Candle"]["properties"]
    assert values["indicators"]["required"] == list(settings.indicator_outputs)


def test_the_sink_writes_the_configured_columns():
    outputs = tuple(n for d in defs("sma:5,vwap") for n in d.outputs)
    session = Session()
    sink = CassandraSink(session, {"1m": 60_000}, outputs=outputs)
    assert sink.insert_candle.prepared.query.endswith(
        "closed, sma_5, vwap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    candle = Candle.first("AAPL", "1m", START, START + 60_000, Bar.tick(START, 2.0, 3.0))
    candle.indicators = {"sma_5": 1.5, "vwap": None}
    params = sink._candle_params(candle)
    assert len(params) == 13 and params[-2:] == (1.5, sink.unset)
