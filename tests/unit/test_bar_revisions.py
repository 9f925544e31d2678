"""A bar sent again under its id with other values (an intraday bar revised at its source)
replaces the earlier version in every candle still forming; candles that closed keep the
earlier one, and the revision is late there. Checked against pandas over the versions that
count, on generated streams. A bar whose id may have been forgotten (it ends more than the id
horizon behind the watermark) is late everywhere: it cannot be told from a resend."""

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from stockapp.tables.candle import Bar, Candle
from stockapp.tables.quote_ids import ID_HORIZON_MS
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from tests.oracle import OhlcBar, assert_candles_match, expected_bar_candles, window_end

TZ = "America/New_York"
INTERVALS = ["1m", "5m", "15m", "1h"]
GRACE_MS = 5000
SPEC = CandleSpec.build(tuple(INTERVALS), TZ, GRACE_MS / 1000)
T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC


def minute_bar(i: int, open_: float, high: float, low: float, close: float, vol: float) -> Bar:
    return Bar.ohlc(T0 + i * 60_000, open_, high, low, close, vol, 60)


def expected(arrivals: list[tuple[str | None, Bar]], interval: str) -> pd.DataFrame:
    """pandas over, per bar id, the last version that arrived while its window was open and
    its id was remembered; and over every tick (no id: never revised, never forgotten) that
    arrived while its window was open."""
    latest_end: int | None = None
    counted: dict[object, Bar] = {}
    for n, (bar_id, bar) in enumerate(arrivals):
        watermark = None if latest_end is None else latest_end - GRACE_MS
        expired = watermark is not None and bar.ts + bar.span_ms < watermark - ID_HORIZON_MS
        if (bar_id is None or not expired) and (
            watermark is None or window_end(bar.ts, interval, TZ) > watermark
        ):
            key = bar_id if bar_id is not None else n
            if counted.get(key) != bar:  # the same version again is a repeat: it stays put
                counted.pop(key, None)
                counted[key] = bar  # re-inserted: the revision's arrival is its place
        end = bar.ts + bar.span_ms
        latest_end = end if latest_end is None else max(latest_end, end)
    bars = [
        OhlcBar("X", b.ts, b.open, b.high, b.low, b.close, b.volume, not b.priced)
        for b in counted.values()
    ]
    return expected_bar_candles(bars, interval, TZ)


def run(arrivals: list[tuple[str, Bar]], roundtrip: bool = False) -> tuple[list[Candle], int]:
    state = SymbolState("AV", SPEC)
    closed: list[Candle] = []
    revised = 0
    for offset, (bar_id, bar) in enumerate(arrivals):
        revised += state.apply(bar, offset, closed, bar_id).revised
        if roundtrip:
            state = SymbolState.from_dict(json.loads(json.dumps(state.to_dict())), SPEC)
    state.close_all(closed)
    return closed, revised


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # how many bars later the revision comes (0: none)
            st.floats(1, 100),
            st.floats(0, 5),
            st.floats(0, 5),
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=90,
    ),
    st.booleans(),
)
def test_revised_bars_match_pandas_over_the_versions_that_count(raw, roundtrip):
    arrivals: list[tuple[str, Bar]] = []
    pending: dict[int, list[tuple[str, Bar]]] = {}
    for i, (later, base, up, down, volume) in enumerate(raw):
        bar_id = f"bar:{i}"
        bar = minute_bar(i, base, base + up, base - down, base + up / 2, float(volume))
        arrivals.append((bar_id, bar))
        arrivals.extend(pending.pop(i, []))
        if later:
            revision = minute_bar(i, base, base + down, base - up, base - down / 2, volume + 7.0)
            pending.setdefault(i + later - 1, []).append((bar_id, revision))
    for rest in pending.values():
        arrivals.extend(rest)
    closed, revised = run(arrivals, roundtrip)
    assert revised >= 0
    for interval in INTERVALS:
        assert_candles_match(closed, expected(arrivals, interval), interval)


def test_a_revision_replaces_the_bar_in_the_hour_but_is_late_for_its_closed_minute():
    state = SymbolState("AV", SPEC)
    closed: list[Candle] = []
    state.apply(minute_bar(0, 10, 12, 9, 11, 100), 0, closed, "b0")
    state.apply(minute_bar(1, 11, 11, 10, 10.5, 50), 1, closed, "b1")  # closes minute 0
    applied = state.apply(minute_bar(0, 10, 10.5, 9.5, 10.2, 80), 2, closed, "b0")
    assert applied.revised and applied.late == ("1m",)
    (minute,) = [c for c in closed if c.interval == "1m"]
    assert (minute.high, minute.volume) == (12, 100)  # closed: the first version stays
    (hour,) = state.forming_candles("1h")
    assert (hour.open, hour.high, hour.low, hour.close) == (10, 11, 9.5, 10.5)
    assert (hour.volume, hour.trades) == (130, 2)
    again = state.apply(minute_bar(0, 10, 10.5, 9.5, 10.2, 80), 3, closed, "b0")
    assert again.repeat and not again.revised  # the same version again is a repeat


def test_in_a_candle_that_also_holds_ticks_a_revision_is_exact():
    """The ticks are settled: the revised bar's earlier high and low leave the candle too."""
    state = SymbolState("MIX", SPEC)
    closed: list[Candle] = []
    state.apply(Bar.tick(T0 + 1_000, 10.0, 5.0), 0, closed, "t1")
    state.apply(minute_bar(1, 10, 15, 8, 11, 100), 1, closed, "b1")
    state.apply(Bar.tick(T0 + 2_000, 10.5, 1.0), 2, closed)
    state.apply(minute_bar(1, 10, 12, 9, 11.5, 60), 3, closed, "b1")
    (hour,) = state.forming_candles("1h")
    assert (hour.volume, hour.trades, hour.close) == (66.0, 3, 11.5)
    assert (hour.open, hour.high, hour.low) == (10.0, 12, 9)


def test_bars_kept_by_an_older_state_count_once_and_are_not_revised():
    state = SymbolState("OLD", SPEC)
    closed: list[Candle] = []
    state.apply(minute_bar(0, 10, 12, 9, 11, 100), 0, closed, "b0")
    stored = state.to_dict()
    for key in ("v", "seq", "bars", "bar_floor", "tick_floor"):  # not in states before 2
        del stored[key]
    stored["bar_ids"] = {"b0": T0 + 60_000}  # how states before revisions kept bar ids
    old = SymbolState.from_dict(stored, SPEC)
    applied = old.apply(minute_bar(0, 10, 10.5, 9.5, 10.2, 80), 1, closed, "b0")
    assert applied.repeat and not applied.revised
    assert old.forming_candles("1h")[0].volume == 100


def test_bars_kept_with_values_by_a_state_before_bounded_ids_count_once():
    """States written before ids were bounded kept each bar's values but no arrival order:
    their bars are known (a resend is a repeat) and settled in their candles; a revision of
    one counts as a repeat, and new bars are revisable again."""
    state = SymbolState("OLD", SPEC)
    closed: list[Candle] = []
    state.apply(minute_bar(0, 10, 12, 9, 11, 100), 0, closed, "b0")
    stored = state.to_dict()
    for key in ("v", "seq", "bars", "bar_floor", "tick_floor"):
        del stored[key]
    stored["bar_ids"] = {"b0": [T0, 60_000, 10, 12, 9, 11, 100]}
    old = SymbolState.from_dict(stored, SPEC)
    assert old.apply(minute_bar(0, 10, 10.5, 9.5, 10.2, 80), 1, closed, "b0").repeat
    old.apply(minute_bar(1, 11, 14, 10, 13, 50), 2, closed, "b1")
    assert old.apply(minute_bar(1, 11, 13, 10, 12, 40), 3, closed, "b1").revised
    (hour,) = old.forming_candles("1h")
    assert (hour.open, hour.high, hour.low, hour.close) == (10, 13, 9, 12)
    assert (hour.volume, hour.trades) == (140, 2)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["bar", "tick", "revision", "volume-only tick"]),
            st.integers(0, 40),  # minute
            st.sampled_from([0, 0, 1_000, 30_000]),  # ms into it: ticks tie with bar starts
            st.floats(1, 100),
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=120,
    ),
    st.booleans(),
)
def test_revisions_among_ticks_match_pandas_exactly(raw, roundtrip):
    """Ticks are settled at once; a revision rebuilds its candles from the settled part and
    the other revisable bars, so open, high, low and close are exact, ties by arrival. Some
    ticks are volume-only trades, which set prices only in a window of nothing else."""
    arrivals: list[tuple[str | None, Bar]] = []
    for kind, minute, into, price, volume in raw:
        if kind.endswith("tick"):
            ts, priced = T0 + minute * 60_000 + into, kind == "tick"
            arrivals.append((None, Bar.tick(ts, price, float(volume), priced)))
            continue
        spread = (price % 3) + (1 if kind == "revision" else 0)
        bar = minute_bar(minute, price, price + spread, price - spread / 2, price, float(volume))
        arrivals.append((f"bar:{minute}", bar))
    state = SymbolState("MIX", SPEC)
    closed: list[Candle] = []
    for offset, (bar_id, bar) in enumerate(arrivals):
        state.apply(bar, offset, closed, bar_id)
        if roundtrip:
            state = SymbolState.from_dict(json.loads(json.dumps(state.to_dict())), SPEC)
    state.close_all(closed)
    for interval in INTERVALS:
        assert_candles_match(closed, expected(arrivals, interval), interval)


def test_a_revision_rebuilds_a_candle_without_the_prices_of_its_volume_only_trades():
    """The settled part of a candle with a revisable bar keeps a volume-only trade's volume
    and not its price, so the rebuild after a revision is exact too."""
    state = SymbolState("MIX", SPEC)
    closed: list[Candle] = []
    state.apply(minute_bar(0, 10, 12, 9, 11, 100), 0, closed, "bar:0")
    state.apply(Bar.tick(T0 + 150_000, 11.5, 2.0), 1, closed)  # minute 2, settled
    state.apply(Bar.tick(T0 + 90_000, 50.0, 7.0, priced=False), 2, closed)  # minute 1
    state.apply(Bar.tick(T0 + 30_000, 1.0, 3.0, priced=False), 3, closed)  # in the bar's minute
    state.apply(minute_bar(0, 10, 13, 9, 12, 80), 4, closed, "bar:0")  # a revision
    (five,) = state.forming_candles("5m")
    assert (five.open, five.high, five.low, five.close) == (10, 13, 9, 11.5)
    assert (five.volume, five.trades) == (92, 4)
    assert five.pv == (13 + 9 + 12) / 3 * 80 + 11.5 * 2 + 50.0 * 7 + 1.0 * 3
