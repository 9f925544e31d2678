"""The processor's effects, their order, and its timer rules (fake sinks, fake clock)."""

import asyncio
import json
import math
from dataclasses import replace

import orjson
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from tests.fakes import Effects, Port, Table

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
    port = Port(backlog=backlog)
    proc = QuoteProcessor(settings, table, effects, effects.publish, clock=clock, port=port)
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
    assert table.state(b"AAPL")["last_offset"] == 3
    assert dict(proc.stats) == {
        "quotes": 3,
        "invalid": 1,
        "late": 1,
        "candles_closed": 1,
        "batches": 1,
        "stored_records": 4,
    }


async def test_the_state_is_written_only_once_every_record_is_delivered():
    """Publishing queues; the broker's acknowledgement comes later. The state write (which
    moves the replay guard past the batch) waits for every delivery."""
    proc, effects, table, _ = make(T0 + 3_600_000)
    slow = asyncio.get_running_loop().create_future()
    effects.deliveries.append(slow)
    task = asyncio.ensure_future(
        proc.process([tick("AAPL", T0, 10.0, 0), tick("AAPL", T0 + 66_000, 11.0, 1)])
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert [p[0] for p in effects.published] == ["candles"]  # queued, not delivered
    assert not task.done() and b"AAPL" not in table and proc.checkpoint.pending_sends == 1
    slow.set_result(None)
    await asyncio.wait_for(task, 1)
    assert table.state(b"AAPL")["last_offset"] == 1 and proc.checkpoint.pending_sends == 0


async def test_a_failed_delivery_fails_the_batch_before_the_state_is_written():
    """The checkpoint then applies the batch again from the stored state and stores it."""
    proc, effects, table, _ = make(T0 + 3_600_000)
    proc.checkpoint.retry_delay = 0.05
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("broker gone"))
    effects.deliveries.append(failed)
    task = asyncio.ensure_future(
        proc.process([tick("AAPL", T0, 10.0, 0), tick("AAPL", T0 + 66_000, 11.0, 1)])
    )
    while not proc.stats["batch_retries"]:
        await asyncio.sleep(0.001)
    assert b"AAPL" not in table and not task.done()
    assert await asyncio.wait_for(task, 2)
    assert table.state(b"AAPL")["last_offset"] == 1
    assert proc.stats["quotes"] == 2 and proc.closed_by_interval == {"1m": 1}


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

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        asked.extend(processed.items())
        return {p: highwater["offset"] - (last + 1) for p, last in processed.items()}

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


async def test_a_thinly_traded_live_symbol_keeps_its_day_open_when_quiet():
    """A live stock that trades less than once a minute is not a replay that stopped: its
    windows close by the wall clock as each ends, not all at once (which would make the rest
    of its day late)."""
    proc, effects, _, clock = make(T0 + 30_500, idle_close_seconds=10.0)
    await proc.process([tick("THIN", T0 + 30_000, 5.0, 0)])
    for seconds in (66, 100, 130):  # its minute closes; then quiet, and no longer "live"
        clock.now = (T0 + seconds * 1000) / 1000
        await proc.on_timer()
    assert [c.interval for c in effects.candles] == ["1m"]
    clock.now = (T0 + 150_000) / 1000
    await proc.process([tick("THIN", T0 + 150_000, 6.0, 1)])
    assert proc.stats["late"] == 0
    clock.now = (T0 + 305_500) / 1000  # 14:05 plus the grace: its 5m window closes
    await proc.on_timer()
    (five,) = [c for c in effects.candles if c.interval == "5m"]
    assert (five.trades, five.open, five.close) == (2, 5.0, 6.0)
    assert sorted(c.interval for c in effects.candles) == ["1m", "1m", "5m"]


async def test_nothing_processed_since_restart_asks_for_the_committed_position():
    asked = []

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        asked.extend(processed.values())
        return dict.fromkeys(processed, 500)  # the committed offset is 500 records behind

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

    async def flaky_write(quotes, candles, signals=()):
        if not failures:
            failures.append(1)
            raise RuntimeError("Cassandra said no")
        return await real_write(quotes, candles, signals)

    effects.write = flaky_write
    proc.checkpoint.writer = effects
    batch = [tick("TSLA", T0 + 66_000 + i, 11.0 + i, 1 + i) for i in range(3)]
    await proc.process_until_done(batch, max_delay=0.01)
    assert proc.stats["batch_retries"] == 1
    assert proc.stats["quotes"] == 4  # the failed try's quotes are not counted
    assert proc.stats["stored_records"] == 4
    assert proc.closed_by_interval == {"1m": 1}
    assert [q.offset for q in effects.quotes] == [0, 1, 2, 3]  # each quote stored once
    assert table.state(b"TSLA")["last_offset"] == 3
    (closed,) = effects.candles  # the 14:00 candle, closed once, from the first tick only
    assert (closed.volume, closed.trades) == (10.0, 1)


async def test_a_record_that_cannot_be_applied_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch,
):
    """Whatever an unforeseen record does inside the state, it lands in the dead-letter topic
    with the reason, and its neighbours (of its own symbol too) are applied exactly once."""
    from stockapp.tables.symbol_state import SymbolState

    real_apply = SymbolState.apply

    def apply(self, bar, offset, closed, quote_id=None, index=0):
        applied = real_apply(self, bar, offset, closed, quote_id, index)
        if bar.close == 13.0:  # fails after changing the state: half-applied
            raise OverflowError("date value out of range")
        return applied

    monkeypatch.setattr(SymbolState, "apply", apply)
    proc, effects, table, _ = make(T0 + 3_600_000)
    batch = [
        tick("AAPL", T0, 10.0, 0),
        tick("AAPL", T0 + 1000, 13.0, 1),  # the poison
        tick("MSFT", T0 + 1000, 20.0, 2),
        tick("AAPL", T0 + 70_000, 11.0, 3),  # closes AAPL's 14:00 minute
    ]
    await proc.process_until_done(batch, max_delay=0.01)
    monkeypatch.setattr(SymbolState, "apply", real_apply)
    assert proc.stats["batch_retries"] == 0 and proc.stats["apply_errors"] == 1
    assert proc.invalid_by_reason == {"unprocessable": 1}
    (dead,) = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert dead[3]["stockapp.reason"].startswith(b"could not be applied: OverflowError")
    assert dead[3]["stockapp.source.offset"] == b"1"
    (minute,) = [c for c in effects.candles if c.interval == "1m"]
    assert (minute.symbol, minute.open, minute.high, minute.close, minute.trades) == (
        "AAPL",
        10.0,
        10.0,
        10.0,
        1,
    )  # the poison's price is nowhere
    assert [q.offset for q in effects.quotes] == [0, 2, 3]
    assert table.state(b"AAPL")["last_offset"] == 3 and table.state(b"MSFT")["last_offset"] == 2


async def test_an_oversized_record_is_forwarded_cut_with_a_header():
    proc, effects, _, _ = make(T0)
    huge = b'{"symbol": "AAPL", "pad": "' + b"x" * 1_000_000 + b'"}'
    await proc.process([RawRecord(b"AAPL", huge, 0, 0)])
    ((topic, key, value, headers),) = effects.published
    assert topic == "quotes.dlq" and key == b"AAPL"
    assert len(value) == 256 * 1024 and value == huge[: len(value)]
    assert proc.invalid_by_reason == {"missing_field": 1}
    assert headers["stockapp.truncated.value"] == str(len(huge)).encode()
    assert headers["stockapp.reason"].startswith(b"missing field 'ts'")


async def test_a_batch_that_keeps_failing_is_reported_until_it_is_stored():
    proc, effects, _, _ = make(T0 + 3_600_000)
    real_write, calls = effects.write, []

    async def failing_write(quotes, candles, signals=()):
        calls.append(1)
        if len(calls) <= 6:
            raise RuntimeError("Cassandra said no")
        assert proc.stuck is not None  # reported while it kept failing
        assert proc.stuck.tries == 6 and proc.stuck.records == 1
        assert proc.stuck.error == "RuntimeError: Cassandra said no"
        return await real_write(quotes, candles, signals)

    effects.write = failing_write
    await proc.process_until_done([tick("TSLA", T0, 10.0, 0)], max_delay=0.001)
    assert proc.stuck is None and len(calls) == 7


HOSTILE_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1e-300, 1e12, 1e15, 1e200, 1e308, -1.0]),
)
HOSTILE_TS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59+00:00",
            "9999-12-31T23:59:59-14:00",
            "2026-01-05T14:00:00Z",
            "2026-01-05T14:00:00",
            "",
        ]
    ),
    st.integers(min_value=T0 - 10**10, max_value=T0 + 10**6),
)


@hsettings(max_examples=150, deadline=None)
@example([{"ts": "0001-01-01T00:00:00+00:00", "price": 1.0, "volume": 1.0}])
@example([{"ts": T0, "price": 1e200, "volume": 1e200}, {"ts": T0 + 1, "price": 1.0, "volume": 1}])
@example(
    [{"ts": T0, "price": 1.0, "volume": 1.0, "open": 1, "high": 1, "low": 1, "bar_seconds": 10**9}]
)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"ts": HOSTILE_TS, "price": HOSTILE_NUMBERS, "volume": HOSTILE_NUMBERS},
            optional={
                "open": HOSTILE_NUMBERS,
                "high": HOSTILE_NUMBERS,
                "low": HOSTILE_NUMBERS,
                "bar_seconds": st.one_of(st.integers(-5, 10**12), st.sampled_from([60, 86_400])),
                "bid": HOSTILE_NUMBERS,
            },
        ),
        min_size=1,
        max_size=12,
    )
)
async def test_no_hostile_quote_stops_the_stream_or_corrupts_state(bodies):
    """Well-formed but hostile quotes: each is applied or dead-lettered, the batch never fails,
    and every stored state holds finite numbers only (JSON would turn inf into null)."""
    proc, effects, table, _ = make(T0 + 1_000_000)
    batch = []
    for i, body in enumerate(bodies):
        # The standard library writes what orjson would not: NaN, Infinity, integers > 64 bits.
        value = json.dumps({"symbol": "HOST", **body}).encode()
        batch.append(RawRecord(b"HOST", value, 0, i))
    await proc.process(batch)
    assert proc.stats["quotes"] + proc.stats["invalid"] == len(batch)
    stored = table.get(b"HOST")
    if stored is not None:
        for value in _numbers(stored):
            assert math.isfinite(value), stored
    # The same stream after a reload gives the same state (nothing lost in JSON).
    assert SymbolStateRoundTrip.ok(proc, stored)


def _numbers(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from _numbers(value)
    elif isinstance(data, float):
        yield data


class SymbolStateRoundTrip:
    @staticmethod
    def ok(proc, stored) -> bool:
        if stored is None:
            return True
        from stockapp.tables.symbol_state import SymbolState

        again = orjson.dumps(SymbolState.from_dict(orjson.loads(stored), proc.spec).to_dict())
        return again == stored


async def test_a_stalled_worker_does_not_judge_waiting_on_time_ticks_late():
    """Cassandra froze across a window end: the quotes sent meanwhile wait in the partition.
    The wall clock must not close the window before they are processed."""
    waiting = {"records": 0}

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        return dict.fromkeys(processed, waiting["records"])

    proc, effects, _, clock = make(T0 + 40_000, backlog=backlog)
    await proc.process([tick("TSLA", T0 + 40_000, 5.0, 0)])
    waiting["records"] = 3  # ticks of 14:00:50 .. 14:00:59 sent on time, not yet processed
    clock.now = (T0 + 95_000) / 1000  # the stall ends 30 s after the minute's end
    await proc.on_timer()
    assert effects.candles == []  # held: records are waiting
    waiting["records"] = 0
    await proc.process([tick("TSLA", T0 + 50_000 + i, 6.0 + i, 1 + i) for i in range(3)])
    assert proc.stats["late"] == 0
    clock.now += 1.0
    await proc.on_timer()  # caught up: now the wall clock closes it, with every tick in it
    (minute,) = [c for c in effects.candles if c.interval == "1m"]
    assert (minute.trades, minute.close) == (4, 8.0)


async def test_a_close_waits_only_for_the_records_that_had_arrived_when_it_asked():
    """Quotes keep coming: a tick never finds its partition with nothing waiting. It waits
    for the records that had arrived when it asked (they may belong to the window), then
    closes without asking again; those that arrived after its question do not hold it up,
    and one of them for the closed window is late (it came past the end plus the grace)."""
    highwater = {"end": 1}
    calls: list[dict[int, int | None]] = []

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        calls.append(dict(processed))
        return {p: highwater["end"] - (last + 1) for p, last in processed.items()}

    proc, effects, _, clock = make(T0 + 40_000, backlog=backlog)
    await proc.process([tick("TSLA", T0 + 40_000, 5.0, 0)])
    highwater["end"] = 3  # offsets 1 and 2, of 14:00:50 and :55, wait in the partition
    clock.now = (T0 + 65_000) / 1000  # the minute's end plus the grace
    await proc.on_timer()
    assert effects.candles == [] and len(calls) == 1
    assert proc.tick_in(clock.now) > 0  # waiting for offsets 1 and 2 to be applied
    highwater["end"] = 10  # more arrive after the question
    await proc.process([tick("TSLA", T0 + 50_000, 6.0, 1)])
    assert proc.tick_in(clock.now) > 0
    await proc.process([tick("TSLA", T0 + 55_000, 7.0, 2)])
    assert proc.tick_in(clock.now) == 0
    clock.now += 0.05
    await proc.on_timer()
    assert len(calls) == 1  # the same question: nothing asked again
    (minute,) = [c for c in effects.candles if c.interval == "1m"]
    assert (minute.trades, minute.close) == (3, 7.0)
    assert proc.question is None and proc.stats["late"] == 0
    await proc.process([tick("TSLA", T0 + 59_000, 8.0, 3), tick("TSLA", T0 + 61_000, 9.0, 4)])
    assert proc.stats["late"] == 1


async def test_a_tick_closes_nothing_when_a_rebalance_came_while_it_asked():
    """The states and positions were forgotten between the tick's question and its close (a
    revocation takes the lock meanwhile): the partitions may be moving, so the tick closes
    nothing; the next one asks again."""
    release = asyncio.Event()

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        await release.wait()
        return dict.fromkeys(processed, 0)

    proc, effects, _, clock = make(T0 + 40_000, backlog=backlog)
    await proc.process([tick("TSLA", T0 + 40_000, 5.0, 0)])
    proc.forget()  # a restart: nothing processed since, nothing waits past the committed offset
    clock.now = (T0 + 66_000) / 1000
    await proc.on_timer()  # finds TSLA in the table (a rescan); not asked yet
    clock.now += 1.0
    timer = asyncio.ensure_future(proc.on_timer())
    await asyncio.sleep(0)
    async with proc.lock:
        proc.forget()  # as a revocation does
    release.set()
    await asyncio.wait_for(timer, 1)
    assert effects.candles == [] and proc.question is None


async def test_a_timer_tick_asks_every_partitions_backlog_in_one_call():
    """The end offsets come fresh from the broker, so they are asked once per tick for all
    partitions with a forming candle; an unknown answer (the broker did not reply) closes
    nothing."""
    calls: list[dict[int, int | None]] = []
    answer: dict[str, dict[int, int | None] | None] = {"left": {}}

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        calls.append(dict(processed))
        left = answer["left"]
        return dict.fromkeys(processed, 0) if left is None else left

    symbols = ["AAPL", "MSFT", "TSLA", "NVDA", "IBM"]
    partitions = {partition_for(s.encode(), 8) for s in symbols}
    assert len(partitions) > 1
    proc, effects, _, clock = make(T0 + 40_000, backlog=backlog)
    await proc.process([tick(s, T0 + 40_000, 5.0, i) for i, s in enumerate(symbols)])
    clock.now = (T0 + 70_000) / 1000  # past the minute's end and its grace
    await proc.on_timer()
    assert len(calls) == 1 and set(calls[0]) == partitions
    assert effects.candles == []  # unknown backlog: not caught up
    answer["left"] = None
    clock.now += 1.0
    await proc.on_timer()
    assert len(calls) == 2
    assert sorted(c.symbol for c in effects.candles if c.interval == "1m") == sorted(symbols)


async def test_the_backlog_is_asked_without_holding_up_batches():
    """The broker's answer can wait behind the consumer's long poll: batches go on meanwhile,
    and the tick closes by the wall clock as of before the question."""
    release = asyncio.Event()

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        clock.now = (T0 + 66_000) / 1000  # the answer took a while
        await release.wait()
        return dict.fromkeys(processed, 0)

    proc, effects, _, clock = make(T0 + 40_000, backlog=backlog)
    await proc.process([tick("TSLA", T0 + 40_000, 5.0, 0)])
    clock.now = (T0 + 64_900) / 1000  # 14:01:04.9: the 14:00 minute is not due yet
    timer = asyncio.ensure_future(proc.on_timer())
    await asyncio.sleep(0)
    await asyncio.wait_for(proc.process([tick("TSLA", T0 + 41_000, 6.0, 1)]), 1.0)
    release.set()
    await timer
    assert effects.candles == []  # judged as of 14:01:04.9, not 14:01:06
    clock.now += 1.0
    proc.drained, proc.last_batch = True, 0.0
    await proc.on_timer()
    (minute,) = [c for c in effects.candles if c.interval == "1m"]
    assert (minute.trades, minute.close) == (2, 6.0)


async def test_symbols_of_partitions_lost_in_a_rebalance_are_left_alone():
    """A memory table keeps the keys this worker wrote before a rebalance moved their
    partition: the timer's rescan and the web's forming candle must not act on them."""
    owned = {"partitions": set(range(8))}
    proc, effects, table, clock = make(T0 + 30_000)
    proc.port.owned_fn = lambda: owned["partitions"]
    await proc.process([tick("TSLA", T0 + 20_000, 5.0, 0)])
    lost = partition_for(b"TSLA", 8)
    owned["partitions"] = set(range(8)) - {lost}
    proc.forget()  # the revoke
    assert proc.forming("TSLA", "1m") == []
    clock.now = (T0 + 66_000) / 1000  # the minute ended more than grace ago
    await proc.on_timer()
    assert effects.candles == [] and "TSLA" not in proc.states
    owned["partitions"].add(lost)  # assigned back (another rebalance): found again
    proc.forget()
    clock.now += 1
    await proc.on_timer()
    assert [(c.interval, c.start) for c in effects.candles] == [("1m", T0)]


async def test_memory_is_bounded_and_evicted_states_come_back_exactly():
    """Thousands of symbols: decoded states beyond the cache bound are dropped once nothing
    is forming, and reloaded from the table later with the same results as never dropping."""

    async def run(cache: int):
        proc, effects, table, clock = make(
            T0 + 86_400_000, state_cache_symbols=cache, idle_close_seconds=1.0
        )
        symbols = [f"Z{i:04d}" for i in range(2000)]
        offset = 0
        for day_ms in (0, 3_600_000):
            for start in range(0, len(symbols), 250):
                batch = []
                for s in symbols[start : start + 250]:
                    batch.append(tick(s, T0 + day_ms + 1000, 10.0 + offset % 7, offset))
                    offset += 1
                await proc.process(batch)
            clock.now += 2
            await proc.on_timer()  # quiet now: every candle closes, nothing is forming
            assert len(proc.states) <= cache and len(proc.last_seen) <= 2 * cache + 2000
        return proc, effects, table

    small, small_effects, small_table = await run(50)
    big, big_effects, big_table = await run(100_000)
    assert small.stats["evicted"] > 3000 and big.stats["evicted"] == 0
    assert dict(small_table) == dict(big_table)
    assert [c.to_dict() for c in small_effects.candles] == [
        c.to_dict() for c in big_effects.candles
    ]


async def test_a_timer_closing_thousands_of_symbols_stores_them_in_chunks():
    """A replay that stops closes every symbol at once; the writes and publishes go out a
    chunk of symbols at a time (bounded memory, a loop that keeps turning), all of them."""
    proc, effects, table, clock = make(T0 + 86_400_000, idle_close_seconds=1.0)
    symbols = [f"C{i:04d}" for i in range(1_200)]
    await proc.process([tick(s, T0 + 1000, 10.0, i) for i, s in enumerate(symbols)])
    effects.log.clear()
    clock.now += 2
    await proc.on_timer()
    writes = [entry for entry in effects.log if entry[0] == "write"]
    assert [w[2] for w in writes] == [5 * 500, 5 * 500, 5 * 200]  # five intervals each
    assert sorted({c.symbol for c in effects.candles}) == symbols
    assert proc.stats["timer_closes"] == 5 * 1_200
    stored = [e[1] for e in effects.log if e[0] == "table"]
    assert sorted(stored) == [s.encode() for s in symbols]  # each once


async def test_a_recreated_quotes_topic_does_not_hide_below_the_replay_guard():
    """Offsets start again at 0 in a topic created anew under the same name: the guard is
    tied to the topic's id, so those records are applied, not skipped as replays."""
    topic = {"id": "11111111-1111-1111-1111-111111111111"}

    async def topic_id():
        return topic["id"]

    proc, effects, table, _ = make(T0 + 3_600_000)
    proc.port.topic_id_fn = topic_id
    await proc.process([tick("ABC", T0 + i * 1000, 10.0 + i, 100 + i) for i in range(3)])
    assert (
        table.state(b"ABC")["topic_id"] == topic["id"] and table.state(b"ABC")["last_offset"] == 102
    )
    await proc.process([tick("ABC", T0 + 5000, 20.0, 101)])  # a real replay: skipped
    assert proc.stats["duplicates"] == 1

    topic["id"] = "22222222-2222-2222-2222-222222222222"  # deleted and created again
    proc.forget()  # the deletion and creation are rebalances
    await proc.process([tick("ABC", T0 + 6000 + i, 30.0 + i, i) for i in range(3)])
    assert proc.stats["topic_recreated"] == 1 and proc.stats["quotes"] == 6
    assert proc.stats["duplicates"] == 1
    assert (
        table.state(b"ABC")["topic_id"] == topic["id"] and table.state(b"ABC")["last_offset"] == 2
    )
    (forming,) = proc.forming("ABC", "1m")
    assert forming[0].trades == 6 and forming[0].close == 32.0


def test_a_state_written_before_topic_ids_adopts_the_topic_without_a_reset():
    from stockapp.tables.symbol_state import CandleSpec, SymbolState

    spec = CandleSpec.build(("1m",), "America/New_York", 5.0)
    old = SymbolState("X", spec).to_dict()
    del old["topic_id"]
    old["last_offset"] = 41
    state = SymbolState.from_dict(old, spec)
    assert state.follow_topic("abc") is False and state.last_offset == 41
    assert state.follow_topic("def") is True and state.last_offset == -1


def quote_record(symbol: str, offset: int, **body) -> RawRecord:
    key = symbol.encode()
    value = orjson.dumps({"symbol": symbol, **body})
    return RawRecord(key, value, partition_for(key, 8), offset)


async def test_a_resent_quote_counts_once():
    """The producer's resend after a broker failure is a new record with the same id."""
    proc, effects, table, _ = make(T0 + 3_600_000)
    first = quote_record("RS", 0, ts=T0, price=10.0, volume=5, id="run1:1")
    again = quote_record("RS", 7, ts=T0, price=10.0, volume=5, id="run1:1")
    other = quote_record("RS", 8, ts=T0 + 1, price=11.0, volume=5, id="run1:2")
    await proc.process([first, again, other])
    assert proc.stats["repeats"] == 1 and proc.stats["quotes"] == 2
    (minute,) = proc.forming("RS", "1m")
    assert (minute[0].volume, minute[0].trades) == (10.0, 2)
    assert [q.offset for q in effects.quotes] == [0, 8]
    assert table.state(b"RS")["last_offset"] == 8  # the repeat moves the guard all the same


async def test_bars_sent_again_by_a_restarted_poller_do_not_double_the_day():
    """An intraday poller that restarts sends its last bars again (ids: start and length);
    the hour and day candles still forming count each bar once."""
    proc, effects, table, _ = make(T0 + 3 * 3_600_000)

    def bars(offset: int) -> list[RawRecord]:
        return [
            quote_record(
                "AVB",
                offset + i,
                ts=T0 + i * 60_000,
                price=10.0,
                open=10.0,
                high=10.0,
                low=10.0,
                volume=100,
                bar_seconds=60,
                id=f"bar:{T0 + i * 60_000}:60",
            )
            for i in range(10)
        ]

    await proc.process(bars(0))
    await proc.process(bars(10))  # the restart
    assert proc.stats["repeats"] == 10
    (hour,) = proc.forming("AVB", "1h")
    assert (hour[0].volume, hour[0].trades) == (1000.0, 10)
    assert len(table.state(b"AVB")["bars"]) == 10  # within the id horizon


async def test_a_revised_bar_replaces_the_earlier_version_through_the_table():
    """A bar published again with other values (the poller saw it still forming): the hour
    holds the new version only, also after the state went through the table."""
    proc, effects, table, _ = make(T0 + 3 * 3_600_000)

    def bar(offset: int, close: float, volume: int) -> RawRecord:
        return quote_record(
            "REV",
            offset,
            ts=T0,
            price=close,
            open=10.0,
            high=max(10.0, close),
            low=min(10.0, close),
            volume=volume,
            bar_seconds=60,
            id=f"bar:{T0}:60",
        )

    await proc.process([bar(0, 11.0, 100)])
    proc.forget()  # the next batch starts from the table
    await proc.process([bar(1, 10.5, 140)])
    assert proc.stats["revised"] == 1 and proc.stats["repeats"] == 0
    (hour,) = proc.forming("REV", "1h")
    assert (hour[0].close, hour[0].high, hour[0].volume, hour[0].trades) == (10.5, 10.5, 140, 1)


def test_quote_ids_are_bounded_and_survive_the_table():
    from stockapp.tables.candle import Bar
    from stockapp.tables.quote_ids import TICK_IDS_MAX, digest
    from stockapp.tables.symbol_state import CandleSpec, SymbolState

    spec = CandleSpec.build(("1m", "1d"), "America/New_York", 5.0)
    state = SymbolState("IDS", spec)
    closed: list = []
    for i in range(TICK_IDS_MAX + 500):
        state.apply(Bar.tick(T0 + i * 10, 1.0, 1.0), i, closed, f"r:{i}")
    assert len(state.tick_ids) <= TICK_IDS_MAX + 1
    state.apply(Bar.tick(T0 + 20 * 60_000, 1.0, 1.0), 10**6, closed, "late-enough")
    # 20 min on: the rest is past the horizon
    assert list(state.tick_ids.entries) == [digest("late-enough")]
    again = SymbolState.from_dict(orjson.loads(orjson.dumps(state.to_dict())), spec)
    assert again.apply(
        Bar.tick(T0 + 20 * 60_000, 1.0, 1.0), 10**6 + 1, closed, "late-enough"
    ).repeat


async def test_records_fetched_before_a_rebalance_are_not_applied():
    """A batch taken before a rebalance and processed after it: its records are left out (the
    worker has sought back to the committed offsets and fetches them again), so no state write
    can miss the changelog the rebalance's recovery read while its offsets get committed."""
    generation = [3]
    proc, effects, table, _ = make(T0 + 3_600_000)
    proc.port.generation_fn = lambda: generation[0]
    old = [replace(tick("AAPL", T0 + i * 1000, 10.0 + i, i), generation=3) for i in range(3)]
    applied = await proc.process(old[:1])
    assert applied == old[:1] and proc.stats["quotes"] == 1

    async with proc.lock:
        proc.revoke()
    # Revoked, not assigned again yet: the generation has not moved, the records are stale.
    assert await proc.process(old[1:2]) == []
    generation[0] = 4
    assert await proc.process(old[2:]) == []
    assert proc.stats["quotes"] == 1 and proc.stats["stale_records"] == 2
    assert table.state(b"AAPL")["last_offset"] == 0
    fresh = [replace(tick("AAPL", T0 + i * 1000, 10.0 + i, i), generation=4) for i in (1, 2)]
    assert await proc.process(fresh) == fresh
    assert proc.stats["quotes"] == 3 and proc.states["AAPL"].last_offset == 2


async def test_a_batch_returns_only_once_its_states_are_durable():
    """The agent acks a batch when process returns, and Faust may commit its offsets at once:
    the states written for it must be acknowledged by Kafka first (their changelog)."""
    proc, effects, table, _ = make(T0 + 3_600_000)

    async def durable() -> None:
        effects.log.append(("durable",))

    proc.checkpoint.durable = durable
    await proc.process([tick("AAPL", T0, 10.0, 0), tick("AAPL", T0 + 66_000, 11.0, 1)])
    kinds = [entry[0] for entry in effects.log]
    assert kinds[-2:] == ["table", "durable"], kinds
