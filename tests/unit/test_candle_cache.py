"""The candle cache of /api/candles: what it answers equals what Cassandra holds, it misses
what it does not know, and it stays within its bounds."""

from __future__ import annotations

from stockapp.tables.candle import Candle
from stockapp.web.candle_cache import CandleCache, Encoded, footprint
from stockapp.web.payload import candle_json, encode_candle

MIN = 60_000
OUTPUTS = ("sma_20", "rsi_14")
KEY = ("AAPL", "1m")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stored(start: int, close: float) -> dict:
    """A candle as the reader makes it of a Cassandra row."""
    return candle_json(
        start, 1.0, 2.0, 0.5, close, 10.0, True, {"sma_20": close, "rsi_14": None}, "regular"
    )


def closed(start: int, close: float) -> Candle:
    # ema_9: computed, not a stored column
    indicators = {"sma_20": close, "rsi_14": None, "ema_9": 3.0}
    return Candle(
        "AAPL",
        "1m",
        start,
        start + MIN,
        1.0,
        2.0,
        0.5,
        close,
        10.0,
        1,
        start,
        start,
        10.0,
        closed=True,
        indicators=indicators,
    )


def test_a_range_read_once_is_answered_from_memory():
    cache = CandleCache(1 << 20, 60.0, OUTPUTS)
    rows = [stored(i * MIN, float(i)) for i in range(10)]
    assert cache.get(KEY, 0, 10 * MIN, 500) is None
    cache.fill(KEY, 0, 500, Encoded.of(rows), cache.version(KEY))
    assert cache.get(KEY, 0, 10 * MIN, 500) == Encoded.of(rows)
    assert cache.get(KEY, 0, 10 * MIN, 3) == Encoded.of(rows[-3:])
    assert cache.get(KEY, 2 * MIN, 5 * MIN, 500) == Encoded.of(rows[2:5])
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_read_cut_by_its_limit_knows_only_from_its_oldest_candle():
    cache = CandleCache(1 << 20, 60.0, OUTPUTS)
    rows = [stored(i * MIN, float(i)) for i in range(5, 10)]  # the latest 5 of 10
    cache.fill(KEY, 0, 5, Encoded.of(rows), cache.version(KEY))
    assert cache.get(KEY, 0, 10 * MIN, 5) == Encoded.of(rows)
    assert cache.get(KEY, 0, 10 * MIN, 6) is None  # a sixth would be older than it knows


def test_candles_closed_here_join_the_range_as_the_reader_would_return_them():
    cache = CandleCache(1 << 20, 60.0, OUTPUTS)
    rows = [stored(i * MIN, float(i)) for i in range(3)]
    cache.fill(KEY, 0, 500, Encoded.of(rows), cache.version(KEY))
    cache.on_stored([closed(3 * MIN, 3.0), closed(4 * MIN, 4.0)])
    assert cache.get(KEY, 0, 10 * MIN, 500) == Encoded.of(
        rows + [stored(3 * MIN, 3.0), stored(4 * MIN, 4.0)]
    )


def test_a_read_during_which_a_candle_closed_or_partitions_moved_is_not_kept():
    cache = CandleCache(1 << 20, 60.0, OUTPUTS)
    before = cache.version(KEY)
    cache.on_stored([closed(3 * MIN, 3.0)])  # stored while the read ran
    cache.fill(KEY, 0, 500, Encoded.of([stored(0, 0.0)]), before)
    assert cache.get(KEY, 0, 10 * MIN, 500) is None
    before = cache.version(KEY)
    cache.clear()  # a rebalance
    cache.fill(KEY, 0, 500, Encoded.of([stored(0, 0.0)]), before)
    assert cache.get(KEY, 0, 10 * MIN, 500) is None


def test_a_range_is_read_again_after_its_age_and_the_bytes_stay_bounded():
    clock = Clock()
    one = footprint(encode_candle(stored(0, 0.0)))
    cache = CandleCache(10 * one, 60.0, OUTPUTS, clock=clock)
    cache.fill(
        KEY, 0, 500, Encoded.of([stored(i * MIN, float(i)) for i in range(6)]), cache.version(KEY)
    )
    other = ("MSFT", "1m")
    cache.fill(
        other,
        0,
        500,
        Encoded.of([stored(i * MIN, float(i)) for i in range(6)]),
        cache.version(other),
    )
    assert cache.bytes <= 10 * one and list(cache.spans) == [other]  # AAPL's went first
    clock.now += 61
    assert cache.get(other, 0, 10 * MIN, 500) is None
    # A range larger than the whole budget is not kept at all.
    cache.fill(
        KEY, 0, 500, Encoded.of([stored(i * MIN, float(i)) for i in range(11)]), cache.version(KEY)
    )
    assert KEY not in cache.spans and cache.bytes <= 10 * one


async def test_the_reader_keeps_only_reads_that_reach_the_open_end():
    """A page of older history (`end=` the oldest candle a chart has) says nothing of the
    candles after it: it must not become the span later requests are answered from."""
    from stockapp.settings import load_settings
    from stockapp.web.params import CandleQuery
    from stockapp.web.reader import Reader

    cache = CandleCache(1 << 20, 60.0, OUTPUTS)
    reader = Reader(load_settings(), cassandra=object(), cache=cache)
    rows = [stored(i * MIN, float(i)) for i in range(10)]
    reads = []

    async def read(q, start, end, interval_ms):
        reads.append((start, end))
        return [r for r in rows if start <= r["t"] * 1000 < end][-q.limit :]

    reader._read_candles = read
    last_tick = 10 * MIN + 5
    older = CandleQuery("AAPL", "1m", None, 5 * MIN, 500)
    version = reader.cache_version(older)
    assert await reader.candles(older, last_tick, version) == rows[:5]
    assert KEY not in cache.spans
    latest = CandleQuery("AAPL", "1m", None, None, 500)
    assert await reader.candles(latest, last_tick, reader.cache_version(latest)) == rows
    assert await reader.candles(latest, last_tick, reader.cache_version(latest)) == rows
    assert await reader.candles(older, last_tick, reader.cache_version(older)) == rows[:5]
    assert len(reads) == 2  # the older page once, the latest once; the rest from memory
    # Not the owner (no version): never from the cache.
    assert await reader.candles(latest, last_tick, None) == rows and len(reads) == 3
