"""The per-symbol state produces exactly the pandas/ta candles, and catches late ticks."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockapp.models import Quote
from tables.candle import Candle
from tables.symbol_state import CandleSpec, SymbolState
from tests.oracle import Tick, assert_close_or_null, expected_candles, late_intervals
from tests.streams import generate_ticks

TZ = "America/New_York"
INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
GRACE_MS = 5000
SPEC = CandleSpec.build(tuple(INTERVALS), TZ, GRACE_MS / 1000)


def run_states(ticks: list[Tick], roundtrip_every: int = 0):
    """Feed ticks through SymbolState objects; returns closed candles and per-tick late sets."""
    states: dict[str, SymbolState] = {}
    closed: list[Candle] = []
    late: list[set[str]] = []
    for offset, tick in enumerate(ticks):
        state = states.get(tick.symbol) or SymbolState(tick.symbol, SPEC)
        applied = state.apply(Quote(tick.symbol, tick.ts, tick.price, tick.volume), offset, closed)
        late.append(set(applied.late))
        if roundtrip_every and offset % roundtrip_every == 0:
            state = SymbolState.from_dict(json.loads(json.dumps(state.to_dict())), SPEC)
        states[tick.symbol] = state
    for state in states.values():
        state.close_all(closed)
    return closed, late


def assert_candles_equal(closed: list[Candle], ticks: list[Tick], late: list[set[str]]):
    for interval in INTERVALS:
        accepted = [t for t, lt in zip(ticks, late, strict=True) if interval not in lt]
        expected = expected_candles(accepted, interval, TZ)
        ours = sorted(
            (c for c in closed if c.interval == interval), key=lambda c: (c.symbol, c.start)
        )
        assert len(ours) == len(expected), interval
        for candle, (_, row) in zip(
            ours, expected.sort_values(["symbol", "start"]).iterrows(), strict=True
        ):
            where = f"{interval} {candle.symbol} {candle.start}"
            assert (candle.symbol, candle.start) == (row["symbol"], row["start"]), where
            assert (candle.open, candle.high, candle.low, candle.close) == (
                row["open"],
                row["high"],
                row["low"],
                row["close"],
            ), where
            assert candle.volume == row["volume"] and candle.trades == row["trades"], where
            assert candle.closed
            for name, value in candle.indicators.items():
                assert_close_or_null(value, row[name], (where, name))


def test_out_of_order_and_late_ticks_match_pandas_and_ta():
    start = 1_767_620_400_000  # 2026-01-05 13:40 UTC
    ticks = generate_ticks(
        20_000,
        ["AAPL", "MSFT", "TSLA"],
        seed=1,
        start_ms=start,
        mean_gap_ms=2000,
        jitter_ms=4000,
        late_every=97,
    )
    closed, late = run_states(ticks)
    assert late == late_intervals(ticks, INTERVALS, GRACE_MS, TZ)
    assert sum(1 for lt in late if lt) > 150
    assert_candles_equal(closed, ticks, late)


def test_state_survives_json_roundtrips():
    ticks = generate_ticks(
        3000, ["X", "Y"], seed=2, start_ms=1_767_620_400_000, jitter_ms=4000, late_every=50
    )
    closed_a, late_a = run_states(ticks)
    closed_b, late_b = run_states(ticks, roundtrip_every=7)
    assert late_a == late_b
    assert [c.to_dict() for c in closed_a] == [c.to_dict() for c in closed_b]


def test_daylight_saving_day_is_23_hours():
    # US clocks moved forward on 2026-03-08: that market day lasts 23 hours.
    start = 1_772_841_600_000  # 2026-03-07 00:00 UTC
    ticks = generate_ticks(
        6000, ["SPY"], seed=3, start_ms=start, mean_gap_ms=60_000, jitter_ms=2000
    )
    closed, late = run_states(ticks)
    days = [c for c in closed if c.interval == "1d"]
    lengths = {c.start: (c.end - c.start) / 3_600_000 for c in days}
    assert 23.0 in lengths.values() and 24.0 in lengths.values()
    assert_candles_equal(closed, ticks, late)


def test_replayed_offsets_are_ignored():
    state = SymbolState("AAPL", SPEC)
    closed: list[Candle] = []
    q = Quote("AAPL", 1_767_620_400_000, 10.0, 5.0)
    assert not state.apply(q, 7, closed).duplicate
    assert state.apply(q, 7, closed).duplicate
    assert state.apply(q, 3, closed).duplicate
    assert state.forming_candles("1m")[0].volume == 5.0


def test_bar_merges_as_bar_and_skips_shorter_intervals():
    state = SymbolState("IBM", SPEC)
    closed: list[Candle] = []
    t0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC, a whole hour
    bar = Quote("IBM", t0, 11.0, 100.0, open=10.0, high=12.0, low=9.0, bar_seconds=300)
    applied = state.apply(bar, 0, closed)
    assert applied.skipped == ("1m",)
    five = state.forming_candles("5m")[0]
    assert (five.open, five.high, five.low, five.close, five.volume) == (
        10.0,
        12.0,
        9.0,
        11.0,
        100.0,
    )
    assert state.provisional(five)["vwap"] == pytest.approx((12.0 + 9.0 + 11.0) / 3)
    # The bar counts at its end: the 5m candle closes once that end is grace behind.
    state.apply(Quote("IBM", t0 + 300_000 + GRACE_MS, 11.5, 1.0), 1, closed)
    assert [c.interval for c in closed] == ["5m"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400_000), st.integers(1, 10_000), st.integers(0, 1000)),
        min_size=1,
        max_size=60,
    )
)
def test_any_stream_matches_pandas(raw):
    base = 1_767_620_400_000
    ticks = [Tick("SYM", base + ts, price / 100, float(volume)) for ts, price, volume in raw]
    closed, late = run_states(ticks)
    assert late == late_intervals(ticks, INTERVALS, GRACE_MS, TZ)
    assert_candles_equal(closed, ticks, late)
