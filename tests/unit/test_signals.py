"""Signal rules against a pandas oracle: every firing of the incremental rules over a long
seeded candle series equals the same rule as vectorised pandas over `ta`'s columns; peek
agrees with add; state round-trips; bad rules are refused with the field named."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from stockapp.tables.indicators import IndicatorSet, Sample
from stockapp.tables.signals import BUILT_IN, RuleError, parse_rule
from tests.oracle import SIGNAL_RULES, rule_firings


def candles(seed: int, n: int = 1500) -> pd.DataFrame:
    rng = random.Random(seed)
    price, rows = 100.0, []
    for _ in range(n):
        ticks = [price := price * (1 + rng.gauss(0, 0.004)) for _ in range(rng.randint(1, 6))]
        rows.append(
            {
                "open": ticks[0],
                "high": max(ticks),
                "low": min(ticks),
                "close": ticks[-1],
                "volume": float(rng.randint(1, 500)),
            }
        )
    return pd.DataFrame(rows)


def points(frame: pd.DataFrame) -> list[dict]:
    """Each candle as the stream gives it to rules: OHLCV plus our own indicator values."""
    indicators, out = IndicatorSet(), []
    for row in frame.itertuples():
        values = indicators.add(Sample(row.close, row.close * row.volume, row.volume, 0))
        out.append({**row._asdict(), **values})
    return out


RULES = [spec.to_json() for spec in BUILT_IN] + SIGNAL_RULES


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_firing_equals_the_pandas_oracle(seed):
    frame = candles(seed)
    stream = points(frame)
    fired_anywhere = 0
    for raw in RULES:
        spec = parse_rule({**raw, "interval": "5m"}, ["5m"])
        rule = spec.make()
        ours = np.array([rule.add(p) for p in stream])
        theirs, tie = rule_firings(spec.to_json(), frame)
        differ = (ours != theirs.to_numpy()) & ~tie.to_numpy()
        assert not differ.any(), (spec.name, list(np.flatnonzero(differ))[:5])
        assert tie.sum() <= 2, spec.name
        fired_anywhere += int(ours.sum())
    assert fired_anywhere > 100  # the series exercises the rules


def test_peek_is_add_without_the_change_and_state_round_trips():
    stream = points(candles(7, 300))
    for raw in RULES:
        spec = parse_rule({**raw, "interval": "1m"}, ["1m"])
        rule, copy = spec.make(), spec.make()
        for point in stream:
            before = json.dumps(rule.state())
            peeked = rule.peek(point)
            assert json.dumps(rule.state()) == before
            copy.restore(json.loads(before))
            assert peeked == rule.add(point) == copy.add(point), spec.name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "a rule is a JSON object"),
        ({"kind": "crosses"}, "kind: 'crosses' is not one of"),
        ({"kind": "crosses_above", "left": "sma_20"}, "right: required by a crosses_above rule"),
        (
            {"kind": "breakout_up", "lookback": 20, "level": 3},
            "level: not a field of a breakout_up rule",
        ),
        (
            {"name": "x", "kind": "crosses_above", "left": "sma_21", "right": 1, "interval": "5m"},
            "left: 'sma_21' is not a series",
        ),
        (
            {"name": "Bad Name", "kind": "breakout_up", "lookback": 2, "interval": "5m"},
            "name: 'Bad Name' is not 1-40",
        ),
        (
            {"name": "x", "kind": "breakout_up", "lookback": 2, "interval": "2m"},
            "interval: '2m' is not one of 5m",
        ),
        (
            {"name": "x", "kind": "breakout_up", "lookback": 0, "interval": "5m"},
            "lookback: 0 is outside 1..500",
        ),
        (
            {
                "name": "x",
                "kind": "enters_above",
                "series": "rsi_14",
                "level": float("nan"),
                "interval": "5m",
            },
            "level: nan is not a finite number",
        ),
        (
            {
                "name": "x",
                "kind": "enters_above",
                "series": "close",
                "level": 10**400,
                "interval": "5m",
            },
            "level: 1000000000000000000000000000000000000000 is not a finite number",
        ),
        (
            {
                "name": "x",
                "kind": "breakout_up",
                "lookback": 2,
                "interval": "5m",
                "symbols": ["aapl"],
            },
            'symbols: "*" or a list',
        ),
    ],
)
def test_bad_rules_name_the_field(raw, message):
    with pytest.raises(RuleError) as caught:
        parse_rule(raw, ["5m"])
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize("symbol", ["AAPL\n", "AAPL\r\n", "\nAAPL", "AAPL\x00", ""])
def test_a_symbol_with_a_trailing_newline_is_refused(symbol):
    # `$` also matches before a final newline: "AAPL\n" passed and the rule never fired.
    raw = {"name": "x", "kind": "breakout_up", "lookback": 2, "interval": "5m", "symbols": [symbol]}
    with pytest.raises(RuleError, match="symbols:"):
        parse_rule(raw, ["5m"])


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "a" * 40 + "\n"])
def test_a_name_with_a_trailing_newline_is_refused(name):
    raw = {"name": name, "kind": "breakout_up", "lookback": 2, "interval": "5m"}
    with pytest.raises(RuleError, match="name:"):
        parse_rule(raw, ["5m"])


def test_a_rule_applies_to_its_symbols_and_interval():
    spec = parse_rule(
        {
            "name": "x",
            "kind": "breakout_up",
            "lookback": 2,
            "interval": "5m",
            "symbols": ["AAPL", "AAPL", "MSFT"],
        },
        ["1m", "5m"],
    )
    assert spec.symbols == ("AAPL", "MSFT")
    assert spec.applies_to("AAPL", "5m") and not spec.applies_to("AAPL", "1m")
    assert not spec.applies_to("TSLA", "5m")
    assert parse_rule(spec.to_json(), ["5m"]) == spec


def test_the_lookback_a_rule_asks_of_every_symbol():
    from stockapp.tables.signals.spec import lookback_of

    assert lookback_of({"kind": "breakout_up", "lookback": 500}) == 500
    assert lookback_of({"kind": "breakout_down", "lookback": 20}) == 20
    assert lookback_of({"kind": "crosses_above", "left": "close", "right": 1}) == 0
    assert lookback_of({"kind": "breakout_up", "lookback": True}) == 0  # not a stored rule's
    assert sum(lookback_of(spec.to_json()) for spec in BUILT_IN) == 40  # fixed and small
