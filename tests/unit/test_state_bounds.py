"""A symbol's state stays bounded whatever the feed (issue: a day of 1-second bars with ids grew
one state past Kafka's record limit), and its candles stay exactly pandas'."""

import random

import orjson
import pandas as pd

from stockapp.tables.candle import Bar, Candle
from stockapp.tables.quote_ids import BAR_IDS_MAX, ID_HORIZON_MS, TICK_IDS_MAX
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from tests.oracle import OhlcBar, assert_candles_match, expected_bar_candles

TZ = "America/New_York"
INTERVALS = ("1m", "5m", "15m", "1h", "1d")
SPEC = CandleSpec.build(INTERVALS, TZ, 5.0)
OPEN = 1_767_623_400_000  # 2026-01-05 09:30 New York
SESSION_S = 23_400  # 6.5 h
# What a state of the default settings may hold at most, encoded (every id memory full, every
# indicator warm, full-precision prices): well under the default budget of 256 KiB.
LOOSE_BOUND = 100_000


def second_bars(seed: int) -> list[tuple[str, Bar]]:
    """A regular session of 1-second bars with ids, full-precision prices, as a vendor's
    1-second bar feed sends them; every 97th bar is revised 3 bars later."""
    rng = random.Random(seed)
    price = 100.0 + rng.random()
    bars: list[tuple[str, Bar]] = []
    revisions: dict[int, tuple[str, Bar]] = {}
    for i in range(SESSION_S):
        price *= 1 + rng.gauss(0, 0.0005)
        open_, close = price, price * (1 + rng.gauss(0, 0.0002))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.0001)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.0001)))
        ts = OPEN + i * 1000
        bar_id = f"XNYS:BIG:{ts}:1s"
        bars.append((bar_id, Bar.ohlc(ts, open_, high, low, close, rng.randint(1, 900), 1)))
        if i % 97 == 5:
            revisions[i + 3] = (bar_id, Bar.ohlc(ts, open_, high * 1.001, low, close, 950, 1))
        if i in revisions:
            bars.append(revisions.pop(i))
    return bars


def expected(arrivals: list[tuple[str, Bar]], interval: str) -> pd.DataFrame:
    """pandas over the last version of each bar (every revision here comes within its
    candle's window and the id horizon)."""
    last: dict[str, Bar] = {}
    for bar_id, bar in arrivals:
        last.pop(bar_id, None)
        last[bar_id] = bar
    bars = [OhlcBar("BIG", b.ts, b.open, b.high, b.low, b.close, b.volume) for b in last.values()]
    return expected_bar_candles(bars, interval, TZ)


def test_a_session_of_second_bars_keeps_the_state_bounded_and_the_candles_exact():
    arrivals = second_bars(7)
    state = SymbolState("BIG", SPEC)
    closed: list[Candle] = []
    sizes = []
    for offset, (bar_id, bar) in enumerate(arrivals):
        state.apply(bar, offset, closed, bar_id)
        assert len(state.bar_ids) <= BAR_IDS_MAX
        if offset % 1800 == 0:
            sizes.append(len(orjson.dumps(state.to_dict())))
            # Through the table now and then, as a worker's state goes.
            state = SymbolState.from_dict(orjson.loads(orjson.dumps(state.to_dict())), SPEC)
    assert max(sizes) < LOOSE_BOUND, sizes
    # Flat once the id memory is full (an hour in): all that grows after is the indicator
    # windows of the longer intervals, a few KB (every bar's id of the day was 1.7 MB).
    assert sizes[-1] - sizes[2] < 8_000, sizes
    state.close_all(closed)
    for interval in INTERVALS:
        assert_candles_match(closed, expected(arrivals, interval), interval)


def test_distinct_ids_out_of_order_from_a_hostile_writer_stay_bounded():
    """10,000 bars and 10,000 ticks with distinct ids, all over the current day and in no
    order: the id memories stay at their bounds and the state small."""
    rng = random.Random(3)
    state = SymbolState("EVIL", SPEC)
    closed: list[Candle] = []
    state.apply(Bar.tick(OPEN + SESSION_S * 1000, 50.0, 1), 0, closed)
    for i in range(10_000):
        ts = OPEN + rng.randrange(SESSION_S) * 1000
        state.apply(Bar.ohlc(ts, 50.0, 51.0, 49.0, 50.5, 10, 1), 2 * i + 1, closed, f"b{i}")
        state.apply(Bar.tick(ts + 1, 50.0, 1), 2 * i + 2, closed, f"t{i}")
    assert len(state.bar_ids) <= BAR_IDS_MAX and len(state.tick_ids) <= TICK_IDS_MAX
    assert len(orjson.dumps(state.to_dict())) < LOOSE_BOUND


def test_a_quote_whose_id_may_be_forgotten_is_late_everywhere_and_counts_nowhere():
    state = SymbolState("OLD", SPEC)
    closed: list[Candle] = []
    state.apply(Bar.tick(OPEN, 10.0, 1), 0, closed, "first")
    state.apply(Bar.tick(OPEN + ID_HORIZON_MS + 60_000, 11.0, 1), 1, closed, "later")
    # "first" again: 16 minutes behind the watermark, its id may be gone. Late, not counted.
    applied = state.apply(Bar.tick(OPEN, 10.0, 1), 2, closed, "first")
    assert applied.expired and set(applied.late) == set(INTERVALS)
    (hour,) = state.forming_candles("1h")
    assert (hour.trades, hour.volume) == (2, 2.0)
    # The same without an id is an ordinary late tick: its hour is still open.
    applied = state.apply(Bar.tick(OPEN, 10.0, 1), 3, closed)
    assert not applied.expired and applied.late == ("1m", "5m", "15m")


def test_a_revision_after_the_count_forgot_its_bar_is_late_not_counted_twice():
    state = SymbolState("CNT", SPEC)
    closed: list[Candle] = []
    for i in range(BAR_IDS_MAX + 10):
        state.apply(Bar.ohlc(OPEN + i * 1000, 5, 6, 4, 5, 1, 1), i, closed, f"b{i}")
    applied = state.apply(Bar.ohlc(OPEN, 5, 9, 4, 5, 7, 1), 10_000, closed, "b0")
    assert applied.expired and not applied.revised
    (day,) = state.forming_candles("1d")
    assert (day.high, day.volume, day.trades) == (6, BAR_IDS_MAX + 10, BAR_IDS_MAX + 10)
    # A bar still remembered is revised exactly, in the day too.
    last = BAR_IDS_MAX + 9
    bar = Bar.ohlc(OPEN + last * 1000, 5, 8, 4, 5, 3, 1)
    assert state.apply(bar, 10_001, closed, f"b{last}").revised
    (day,) = state.forming_candles("1d")
    assert (day.high, day.volume, day.trades) == (8, BAR_IDS_MAX + 12, BAR_IDS_MAX + 10)


def test_a_bar_sent_under_its_id_at_another_time_is_another_bar():
    """A bar is its id with its start and length: a "moved" version counts as a new bar
    whether or not the first one's id is still remembered (it would be counted twice once
    forgotten otherwise)."""
    spec = CandleSpec.build(("1m", "1h"), TZ, 5.0)
    for gap_minutes in (3, 17):  # the first version's id remembered, then forgotten
        state = SymbolState("MOV", spec)
        closed: list[Candle] = []
        state.apply(Bar.ohlc(OPEN, 10, 11, 9, 10, 100, 60), 0, closed, "bar-X")
        state.apply(Bar.tick(OPEN + gap_minutes * 60_000, 10, 1), 1, closed)
        later = Bar.ohlc(OPEN + 20 * 60_000, 10, 12, 9, 12, 100, 60)
        applied = state.apply(later, 2, closed, "bar-X")
        assert not applied.revised and not applied.expired
        (hour,) = state.forming_candles("1h")
        assert (hour.trades, hour.volume) == (3, 201.0)


def test_a_revision_after_an_interval_was_added_is_a_repeat_not_an_error():
    """Kept bars may or may not be in the new interval's candles: they become known but no
    longer revisable, as in a state written before revisions."""
    one = CandleSpec.build(("1m",), TZ, 5.0)
    two = CandleSpec.build(("1m", "5m"), TZ, 5.0)
    state = SymbolState("CFG", one)
    closed: list[Candle] = []
    state.apply(Bar.ohlc(OPEN, 10, 11, 9, 10, 100, 1), 0, closed, "bar-1")
    state = SymbolState.from_dict(orjson.loads(orjson.dumps(state.to_dict())), two)
    state.apply(Bar.tick(OPEN + 2000, 10, 1), 1, closed)
    applied = state.apply(Bar.ohlc(OPEN, 10, 12, 9, 11, 100, 1), 2, closed, "bar-1")
    assert applied.repeat and not applied.revised
    (minute,) = state.forming_candles("1m")
    assert (minute.high, minute.volume) == (11, 101.0)


def test_a_decoded_state_keeps_its_indicators_and_warms_up_an_added_interval():
    """A state written with 1m and 5m, read with 5m and 15m: 5m's indicators go on where they
    were, 15m's start fresh, 1m's are dropped, in the configured order; read back with the
    spec it was written with, the state encodes to the same bytes."""
    written = CandleSpec.build(("1m", "5m"), TZ, 5.0)
    read = CandleSpec.build(("5m", "15m"), TZ, 5.0)
    state = SymbolState("CFG", written)
    closed: list[Candle] = []
    for i in range(600):  # 50 minutes of ticks: warm 5m indicators
        state.apply(Bar.tick(OPEN + i * 5000, 10 + (i % 7) * 0.25, 1), i, closed)
    stored = orjson.loads(orjson.dumps(state.to_dict()))
    same = SymbolState.from_dict(stored, written)
    assert orjson.dumps(same.to_dict()) == orjson.dumps(state.to_dict())
    other = SymbolState.from_dict(stored, read)
    assert list(other.indicators) == ["5m", "15m"]
    five = other.indicators["5m"].state()
    assert five == state.indicators["5m"].state() and five != other.indicators["15m"].state()
    assert other.indicators["15m"].state() == SymbolState("NEW", read).indicators["15m"].state()


def test_ticks_of_one_second_past_the_count_all_count():
    """A busy second of a feed stamped to the second: more ticks than the ids kept, all on
    time, none dropped."""
    state = SymbolState("BUSY", SPEC)
    closed: list[Candle] = []
    for i in range(TICK_IDS_MAX + 500):
        applied = state.apply(Bar.tick(OPEN, 10.0, 1), i, closed, f"t{i}")
        assert not applied.expired, i
    (minute,) = state.forming_candles("1m")
    assert minute.trades == TICK_IDS_MAX + 500
