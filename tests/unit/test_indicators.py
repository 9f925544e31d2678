"""Incremental indicators equal ``ta`` on the same closes, null exactly where ta is NaN, for
the default set and for other STOCKAPP_INDICATORS settings."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockapp.tables.indicators import NAMES, IndicatorSet, Sample
from stockapp.tables.indicators.registry import parse_indicators
from tests.oracle import DEFAULT_INDICATORS, assert_close_or_null, ta_indicators

# Settings the tests run over: the default, the example, the smallest windows each
# kind allows, and long or unusual ones.
SETTINGS = [
    DEFAULT_INDICATORS,
    "sma:20,sma:50,sma:200,ema:9,ema:21,rsi:14,macd:12:26:9,bb:20:2,vwap",
    "sma:5,ema:9,rsi:7,macd:5:35:5,bb:10:2.5,vwap",
    "sma:1,ema:1,rsi:1,macd:1:2:1,bb:1:0.5,bb:2:3",
    "rsi:2,rsi:30,ema:100,macd:3:10:16,bb:50:1.25,sma:500",
]


def sample(close: float, session: int, pv: float, volume: float) -> Sample:
    return Sample(close=close, pv=pv, volume=volume, session=session)


def run_incremental(closes: list[float], setting: str = DEFAULT_INDICATORS) -> list[dict]:
    indicators = IndicatorSet(parse_indicators(tuple(setting.split(","))))
    return [indicators.add(sample(c, 0, c, 1.0)) for c in closes]


def random_walk(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))


def assert_equals_ta(closes: list[float], setting: str) -> None:
    expected = ta_indicators(closes, setting)
    rows = run_incremental(closes, setting)
    outputs = {n for d in parse_indicators(tuple(setting.split(","))) for n in d.outputs}
    assert outputs - {"vwap"} == set(expected.columns)  # the documented names, every one
    for i, row in enumerate(rows):
        assert set(row) == outputs
        for name in expected.columns:
            assert_close_or_null(row[name], expected[name].iloc[i], f"{name}[{i}]")


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("seed", range(3))
def test_random_walk_equals_ta(seed, setting):
    assert_equals_ta(random_walk(1500, seed), setting)


@pytest.mark.parametrize("setting", SETTINGS)
@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1, max_size=120)
)
def test_any_series_equals_ta(setting, closes):
    assert_equals_ta(closes, setting)


def test_flat_prices_give_rsi_100_and_zero_width_bands():
    rows = run_incremental([50.0] * 60)
    assert rows[12]["rsi_14"] is None and rows[13]["rsi_14"] == 100.0
    assert rows[-1]["bb_upper"] == rows[-1]["bb_lower"] == 50.0


def test_warm_up_lengths():
    rows = run_incremental(random_walk(60, 7))
    first = {
        name: next(i for i, r in enumerate(rows) if r[name] is not None)
        for name in NAMES
        if name != "vwap"
    }
    assert first == {
        "sma_20": 19,
        "sma_50": 49,
        "ema_12": 11,
        "ema_26": 25,
        "rsi_14": 13,
        "macd": 25,
        "macd_signal": 33,
        "macd_hist": 33,
        "bb_upper": 19,
        "bb_middle": 19,
        "bb_lower": 19,
    }


def test_peek_equals_add_and_changes_nothing():
    closes = random_walk(80, 3)
    indicators = IndicatorSet()
    for c in closes:
        before = json.dumps(indicators.state())
        peeked = indicators.peek(sample(c, 0, c * 2, 2.0))
        assert json.dumps(indicators.state()) == before
        assert peeked == indicators.add(sample(c, 0, c * 2, 2.0))


def test_state_round_trips_through_json():
    closes = random_walk(70, 4)
    a = IndicatorSet()
    for c in closes[:40]:
        a.add(sample(c, 0, c, 1.0))
    b = IndicatorSet.restored(json.loads(json.dumps(a.state())))
    for c in closes[40:]:
        assert a.add(sample(c, 0, c, 1.0)) == b.add(sample(c, 0, c, 1.0))


def test_session_vwap_restarts_each_session():
    indicators = IndicatorSet()
    assert indicators.add(sample(10.0, 1, 10.0 * 3, 3.0))["vwap"] == 10.0
    assert indicators.add(sample(20.0, 1, 20.0 * 1, 1.0))["vwap"] == (30.0 + 20.0) / 4.0
    assert indicators.add(sample(30.0, 2, 30.0 * 5, 5.0))["vwap"] == 30.0
    assert indicators.add(sample(30.0, 2, 0.0, 0.0))["vwap"] == 30.0
    fresh = IndicatorSet()
    assert fresh.add(sample(1.0, 9, 0.0, 0.0))["vwap"] is None
