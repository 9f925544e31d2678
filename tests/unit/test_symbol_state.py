"""The per-symbol state produces exactly the pandas/ta candles, and catches late ticks."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockapp.tables.candle import Bar, Candle
from stockapp.tables.symbol_state import CandleSpec, SymbolState
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
        bar = Bar.tick(tick.ts, tick.price, tick.volume, not tick.volume_only)
        applied = state.apply(bar, offset, closed)
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
    q = Bar.tick(1_767_620_400_000, 10.0, 5.0)
    assert not state.apply(q, 7, closed).duplicate
    assert state.apply(q, 7, closed).duplicate
    assert state.apply(q, 3, closed).duplicate
    assert state.forming_candles("1m")[0].volume == 5.0


def test_bar_merges_as_bar_and_skips_shorter_intervals():
    state = SymbolState("IBM", SPEC)
    closed: list[Candle] = []
    t0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC, a whole hour
    bar = Bar.ohlc(t0, open=10.0, high=12.0, low=9.0, close=11.0, volume=100.0, seconds=300)
    state.apply(bar, 0, closed)
    assert state.forming_candles("1m") == []  # a 5-minute bar does not fit in a 1m candle
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
    state.apply(Bar.tick(t0 + 300_000 + GRACE_MS, 11.5, 1.0), 1, closed)
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


@given(
    st.lists(
        st.tuples(
            st.integers(0, 400_000), st.integers(1, 10_000), st.integers(0, 1000), st.booleans()
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 7),
)
@settings(max_examples=150, deadline=None)
def test_volume_only_trades_count_in_volume_and_set_no_price_where_others_do(raw, roundtrip):
    """Any mix of trades that update the last sale and volume-only ones, in any order, late
    or not, through state round trips: candles equal the pandas oracle exactly."""
    base = 1_767_620_400_000
    ticks = [
        Tick("SYM", base + ts, price / 100, float(volume), volume_only)
        for ts, price, volume, volume_only in raw
    ]
    closed, late = run_states(ticks, roundtrip_every=roundtrip)
    assert late == late_intervals(ticks, INTERVALS, GRACE_MS, TZ)
    assert_candles_equal(closed, ticks, late)


def test_a_volume_only_trade_keeps_the_prices_of_its_candle():
    state = SymbolState("SYM", SPEC)
    closed: list[Candle] = []
    state.apply(Bar.tick(1_000, 50.0, 1.0, priced=False), 0, closed)  # alone: its price
    state.apply(Bar.tick(2_000, 10.0, 2.0), 1, closed)  # the tape's first: replaces it
    state.apply(Bar.tick(3_000, 99.0, 4.0, priced=False), 2, closed)
    state.close_all(closed)
    minute = next(c for c in closed if c.interval == "1m")
    assert (minute.open, minute.high, minute.low, minute.close) == (10.0, 10.0, 10.0, 10.0)
    assert (minute.volume, minute.trades, minute.priced) == (7.0, 3, True)
    assert minute.pv == 50.0 + 20.0 + 396.0


def test_state_written_before_indicators_were_keyed_still_loads():
    """A changelog value written by stockapp 0.1 (indicator state as a positional list) loads,
    and the stream continues from it exactly as an uninterrupted run would."""
    fixture = json.loads(
        (Path(__file__).parent.parent / "fixtures" / "symbol_state_v1.json").read_text()
    )
    ticks = [Bar.tick(ts, price, volume) for ts, price, volume in fixture["ticks"]]
    split = fixture["state_after"]
    stored = fixture["state"]
    assert isinstance(stored["intervals"]["1m"]["indicators"], list)  # the old format

    uninterrupted = SymbolState("AAPL", SPEC)
    expected: list[Candle] = []
    for offset, bar in enumerate(ticks):
        uninterrupted.apply(bar, offset, expected if offset >= split else [])

    resumed = SymbolState.from_dict(stored, SPEC)
    closed: list[Candle] = []
    for offset, bar in enumerate(ticks[split:], start=split):
        resumed.apply(bar, offset, closed)
    assert len(closed) == len(expected) > 10
    for ours, theirs in zip(closed, expected, strict=True):
        assert ours.to_dict() == theirs.to_dict()
    # Written back keyed by indicator.
    assert set(resumed.to_dict()["intervals"]["1m"]["indicators"]) >= {"sma_20", "macd_12_26_9"}


def test_indicator_state_from_another_set_loads():
    """Indicators a stored state lacks start fresh; ones it has that are not configured, or
    cannot be read, are dropped: an upgrade never stops the stream."""
    from stockapp.tables.indicators import IndicatorSet, Sample
    from stockapp.tables.indicators.registry import IndicatorDef

    old = IndicatorSet((IndicatorDef("sma", (3,)), IndicatorDef("ema", (2,))))
    for close in (1.0, 2.0, 3.0):
        old.add(Sample(close=close, pv=close, volume=1.0, session=0))
    state = old.state() | {"gone_9": [1, 2, 3], "rsi_2": "unreadable"}
    new = IndicatorSet.restored(
        state, (IndicatorDef("sma", (3,)), IndicatorDef("rsi", (2,)), IndicatorDef("vwap"))
    )
    values = new.add(Sample(close=4.0, pv=4.0, volume=1.0, session=0))
    assert values["sma_3"] == 3.0  # carried over: (2 + 3 + 4) / 3
    assert values["rsi_2"] is None  # fresh: warming up again
    assert new.add(Sample(close=5.0, pv=5.0, volume=1.0, session=0))["rsi_2"] == 100.0
    assert values["vwap"] == 4.0
    assert "ema_2" not in values
