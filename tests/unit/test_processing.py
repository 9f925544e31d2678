"""The processor's effects, their order, and its timer rules (fake sinks, fake clock)."""

import orjson

from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from tests.fakes import Effects, Table

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(now_ms: int, backlog=None, **overrides):
    settings = load_settings().model_copy(update=overrides)
    effects = Effects()
    table = Table(effects)
    clock = Clock(now_ms / 1000)
    proc = QuoteProcessor(settings, table, effects, effects.publish, clock=clock, backlog=backlog)
    return proc, effects, table, clock


def tick(symbol: str, ts: int, price: float, offset: int, volume: float = 10) -> RawRecord:
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": volume}
    key = symbol.encode()
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


async def test_effects_happen_in_durable_order():
    proc, effects, table, _ = make(T0 + 3_600_000)
    await proc.process(
        [
            tick("AAPL", T0, 10.0, 0),
            tick("AAPL", T0 + 66_000, 11.0, 1),
            RawRecord(b"AAPL", b"junk", 0, 2),
            tick("AAPL", T0 + 1000, 9.0, 3),
        ]
    )
    kinds = [entry[0] for entry in effects.log]
    # Cassandra first, then Kafka, then the table (whose changelog moves the replay guard).
    assert kinds == ["write", "publish", "publish", "publish", "table"]
    assert effects.log[0] == ("write", 3, 1)  # 3 valid quotes, the 14:00 1m candle closed
    topics = [p[0] for p in effects.published]
    assert topics == ["quotes.dlq", "quotes.late", "candles"]
    dlq = effects.published[0]
    assert dlq[1:3] == (b"AAPL", b"junk")
    assert dlq[3]["stockapp.source.offset"] == b"2"
    assert dlq[3]["stockapp.reason"].startswith(b"not valid JSON")
    assert effects.published[1][3]["stockapp.reason"] == b"candle already closed for 1m"
    candle = orjson.loads(effects.published[2][2])
    assert (candle["interval"], candle["open"], candle["closed"]) == ("1m", 10.0, True)
    assert table[b"AAPL"]["last_offset"] == 3
    assert dict(proc.stats) == {
        "quotes": 3,
        "invalid": 1,
        "late": 1,
        "candles_closed": 1,
        "batches": 1,
    }


async def test_replayed_batch_changes_nothing():
    proc, effects, table, _ = make(T0 + 3_600_000)
    batch = [tick("MSFT", T0 + i * 1000, 10.0 + i, i) for i in range(100)]
    await proc.process(batch)
    state_before = table[b"MSFT"]
    written = len(effects.quotes)
    proc.forget()  # as after a restart: state comes back from the table
    await proc.process(batch)
    assert len(effects.quotes) == written
    assert table[b"MSFT"] == state_before
    assert proc.stats["duplicates"] == 100


async def test_live_symbol_closes_by_wall_clock_within_grace_plus_one_second():
    now_ms = T0 + 30_000
    proc, effects, _, clock = make(now_ms)
    await proc.process([tick("TSLA", T0 + 20_000, 5.0, 0)])
    clock.now = (T0 + 60_000 + 5_000 - 1) / 1000  # end of minute + grace - 1 ms
    await proc.on_timer()
    assert effects.candles == []
    clock.now = (T0 + 60_000 + 5_000 + 1000) / 1000  # one timer tick later
    await proc.on_timer()
    assert [(c.interval, c.start) for c in effects.candles] == [("1m", T0)]


async def test_quiet_replayed_symbol_closes_after_idle_time_once_caught_up():
    highwater = {"offset": 10}
    asked = []

    async def backlog(partition: int, processed: int | None) -> int:
        asked.append((partition, processed))
        return highwater["offset"] - (processed + 1)

    proc, effects, _, clock = make(T0 + 86_400_000 * 30, backlog=backlog, idle_close_seconds=10.0)
    await proc.process([tick("IBM", T0 + 1000, 7.0, 0)])
    clock.now += 9
    await proc.on_timer()
    assert effects.candles == []
    clock.now += 2
    await proc.on_timer()
    assert effects.candles == []  # offsets 1..9 of the partition are not processed yet
    assert asked[-1] == (partition_for(b"IBM", 8), 0)
    highwater["offset"] = 1
    await proc.process([tick("OTHER", T0, 1.0, 1)], drained=False)
    await proc.on_timer()
    assert effects.candles == []  # a full batch: the next may be right behind it
    clock.now += 1  # no batch since the full one: the buffer is empty after all
    await proc.on_timer()
    assert sorted(c.interval for c in effects.candles) == ["15m", "1d", "1h", "1m", "5m"]
    # Afterwards the closed windows stay closed: a tick for them is late.
    await proc.process([tick("IBM", T0 + 2000, 7.5, 2)])
    assert proc.stats["late"] == 1


async def test_nothing_processed_since_restart_asks_for_the_committed_position():
    asked = []

    async def backlog(partition: int, processed: int | None) -> int | None:
        asked.append(processed)
        return 500  # the committed offset is 500 records behind the partition's end

    proc, effects, table, clock = make(T0 + 86_400_000, backlog=backlog, idle_close_seconds=3.0)
    await proc.process([tick("NVDA", T0, 1.0, 0)])
    proc.forget()  # a restart or rebalance: no offsets processed since
    clock.now += 60
    await proc.on_timer()  # loads NVDA from the table
    clock.now += 5
    await proc.on_timer()
    assert asked and asked[-1] is None
    assert effects.candles == []


async def test_replayed_records_count_as_activity():
    proc, effects, _, clock = make(T0 + 86_400_000 * 30, idle_close_seconds=10.0)
    batch = [tick("IBM", T0 + 1000, 7.0, 0)]
    await proc.process(batch)
    clock.now += 9
    await proc.process(batch)  # a duplicate, as replayed after a restart
    clock.now += 2
    await proc.on_timer()
    assert effects.candles == []


async def test_timer_scans_recovered_table_for_states():
    proc, effects, table, clock = make(T0 + 86_400_000)
    await proc.process([tick("NVDA", T0, 1.0, 0)])
    proc.forget()  # a rebalance: nothing cached, the state is only in the table
    clock.now += 60
    await proc.on_timer()
    assert len(effects.candles) == 5


async def test_a_failed_batch_is_retried_from_the_stored_state():
    """A write that fails must not leave states ahead of storage: the retry re-applies the
    batch, nothing is lost and nothing is counted twice (Faust would ack a batch that left
    the agent by an exception)."""
    proc, effects, table, _ = make(T0 + 3_600_000)
    await proc.process([tick("TSLA", T0, 10.0, 0)])
    real_write, failures = effects.write, []

    async def flaky_write(quotes, candles):
        if not failures:
            failures.append(1)
            raise RuntimeError("Cassandra said no")
        return await real_write(quotes, candles)

    effects.write = flaky_write
    proc.writer = effects
    batch = [tick("TSLA", T0 + 66_000 + i, 11.0 + i, 1 + i) for i in range(3)]
    await proc.process_until_done(batch, max_delay=0.01)
    assert proc.stats["batch_retries"] == 1
    assert [q.offset for q in effects.quotes] == [0, 1, 2, 3]  # each quote stored once
    assert table[b"TSLA"]["last_offset"] == 3
    (closed,) = effects.candles  # the 14:00 candle, closed once, from the first tick only
    assert (closed.volume, closed.trades) == (10.0, 1)
