"""Applying and storing overlap (stockapp/checkpoint.py): a batch is applied while the one
before is stored, what is queued is stored as one change, a failed store applies the dropped
batches again in order, a revocation waits for the queue, and a state that left memory
while queued comes back as applied. Each result is compared with the same batches processed
one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import orjson
import pytest

from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from tests.fakes import Effects, Port, Table

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC


def make(now_ms: int = T0 + 3_600_000, **overrides):
    settings = load_settings().model_copy(update=overrides)
    effects = Effects()
    table = Table(effects)
    port = Port()
    proc = QuoteProcessor(
        settings, table, effects, effects.publish, clock=lambda: now_ms / 1000, port=port
    )
    proc.checkpoint.retry_delay = 0.01
    return proc, effects, table


def tick(symbol: str, ts: int, price: float, offset: int) -> RawRecord:
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": 10}
    key = symbol.encode()
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


def batches() -> list[list[RawRecord]]:
    """Three batches: AAPL and MSFT minutes, the second closing AAPL's 14:00 minute."""
    return [
        [tick("AAPL", T0, 10.0, 0), tick("MSFT", T0 + 1000, 20.0, 1)],
        [tick("AAPL", T0 + 61_000, 11.0, 2), tick("AAPL", T0 + 62_000, 12.0, 3)],
        [tick("MSFT", T0 + 65_000, 21.0, 4), tick("AAPL", T0 + 125_000, 13.0, 5)],
    ]


async def one_at_a_time() -> tuple[dict[bytes, bytes], list]:
    proc, effects, table = make()
    for batch in batches():
        await proc.process(batch)
    return dict(table), effects.candles


class Gate:
    """A writer that waits while closed."""

    def __init__(self, effects: Effects) -> None:
        self.effects = effects
        self.real = effects.write
        self.open = asyncio.Event()
        self.calls = 0
        self.fail_next = 0

    async def write(self, quotes, candles, signals=()):
        self.calls += 1
        await self.open.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("Cassandra said no")
        return await self.real(quotes, candles, signals)


def gated(proc: QuoteProcessor, effects: Effects) -> Gate:
    gate = Gate(effects)
    proc.checkpoint.writer = gate
    return gate


def acks() -> tuple[list[int], Callable[[Sequence[RawRecord]], Awaitable[None]]]:
    """The offsets acked, in order, and the acker that records them."""
    acked: list[int] = []

    async def ack(records: Sequence[RawRecord]) -> None:
        acked.extend(r.offset for r in records)

    return acked, ack


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_batches_are_applied_while_the_one_before_is_stored_and_stored_together():
    expected_table, expected_candles = await one_at_a_time()
    proc, effects, table = make()
    gate = gated(proc, effects)
    applied: list[set[str]] = []
    proc.applied_listeners.append(lambda touched, closed: applied.append(touched))
    acked: list[list[int]] = []

    def acker(n: int):
        async def ack(records):
            acked.append([r.offset for r in records])

        return ack

    pendings = []
    for i, batch in enumerate(batches()):
        pendings.append(await proc.submit(batch, acker=acker(i)))
        await settle()  # the first is taken by the store at once; the others queue
    # All three applied (the live push saw them) while the first is still being stored.
    assert applied == [{"AAPL", "MSFT"}, {"AAPL"}, {"MSFT", "AAPL"}]
    assert gate.calls == 1 and not any(p.stored.done() for p in pendings)
    assert b"AAPL" not in table
    gate.open.set()
    for p in pendings:
        await asyncio.wait_for(p.stored, 1)
    # The first alone, then the two queued behind it as one change (one state write each).
    assert gate.calls == 2
    writes = [entry[1] for entry in effects.log if entry[0] == "table"]
    assert sorted(writes[:2]) == sorted(writes[2:]) == [b"AAPL", b"MSFT"]
    assert acked == [[0, 1], [2, 3], [4, 5]]  # in order, once stored
    assert dict(table) == expected_table
    assert effects.candles == expected_candles
    assert proc.stats["quotes"] == 6 and proc.stats["batches"] == 3


async def test_a_failed_store_applies_the_batches_queued_behind_it_again_in_order():
    expected_table, expected_candles = await one_at_a_time()
    proc, effects, table = make()
    gate = gated(proc, effects)
    gate.fail_next = 1
    acked, ack = acks()

    pendings = []
    for batch in batches():
        pendings.append(await proc.submit(batch, acker=ack))
        await settle()  # the first is being stored (and fails) with the others queued
    gate.open.set()
    for p in pendings:
        assert await asyncio.wait_for(p.stored, 2)
    assert proc.stats["batch_retries"] == 1
    assert acked == [0, 1, 2, 3, 4, 5]
    assert dict(table) == expected_table
    assert effects.candles == expected_candles  # nothing closed twice, nothing lost
    assert [q.offset for q in effects.quotes] == [0, 1, 2, 3, 4, 5]
    assert proc.stats["quotes"] == 6  # the failed try is not counted


async def test_a_timer_close_queued_behind_a_failed_store_is_closed_again_later():
    now = {"ms": T0 + 30_000}
    proc, effects, table = make()
    proc.clock = lambda: now["ms"] / 1000
    proc.cache.clock = proc.clock
    await proc.process([tick("TSLA", T0 + 20_000, 5.0, 0)])
    gate = gated(proc, effects)
    gate.fail_next = 1
    pending = await proc.submit([tick("TSLA", T0 + 21_000, 6.0, 1)])
    now["ms"] = T0 + 66_000
    proc.drained, proc.last_batch = True, 0.0
    timer = asyncio.ensure_future(proc.on_timer())
    await settle()
    gate.open.set()
    await asyncio.wait_for(timer, 2)
    assert await asyncio.wait_for(pending.stored, 2)
    assert proc.stats["timer_retries"] == 1 and effects.candles == []
    await proc.on_timer()
    (minute,) = [c for c in effects.candles if c.interval == "1m"]
    assert (minute.trades, minute.close) == (2, 6.0)  # the re-applied batch is in it


async def test_a_state_that_left_memory_while_queued_comes_back_as_applied():
    proc, effects, table = make(state_cache_symbols=1)
    gate = gated(proc, effects)
    first = await proc.submit([tick("AAPL", T0, 10.0, 0)])
    second = await proc.submit([tick("MSFT", T0, 20.0, 1)])  # AAPL leaves memory
    assert "AAPL" not in proc.cache and b"AAPL" not in table
    third = await proc.submit([tick("AAPL", T0 + 1000, 11.0, 2)])
    gate.open.set()
    for p in (first, second, third):
        await asyncio.wait_for(p.stored, 1)
    state = table.state(b"AAPL")
    assert state["last_offset"] == 2
    (one_minute,) = [proc.cache.decode("AAPL", state).forming_candles("1m")][0]
    assert (one_minute.trades, one_minute.open, one_minute.close) == (2, 10.0, 11.0)


async def test_a_revocation_waits_for_the_queue_and_a_failure_meanwhile_drops_the_rest():
    proc, effects, table = make()
    gate = gated(proc, effects)
    gate.fail_next = 1
    acked, ack = acks()

    first = await proc.submit(batches()[0], acker=ack)
    second = await proc.submit(batches()[1], acker=ack)
    forgot: list[bool] = []
    revocation = asyncio.ensure_future(proc.checkpoint.revoke(lambda: forgot.append(True)))
    await settle()
    assert not revocation.done()
    # No batch is applied during the revocation.
    third = asyncio.ensure_future(proc.submit(batches()[2], acker=ack))
    await settle()
    assert not third.done()
    gate.open.set()
    await asyncio.wait_for(revocation, 2)
    assert forgot == [True]
    assert await first.stored is None and await second.stored is None
    assert acked == [] and dict(table) == {}  # read again by the partitions' next owner
    assert await asyncio.wait_for(third, 1) is not None


async def the_third_waits_for_the_store(proc, gate, table, first, second) -> None:
    """With the queue at its bound, the third batch waits; once the store takes what is
    queued, it is applied and stored."""
    third = asyncio.ensure_future(proc.submit(batches()[2]))
    await settle()
    assert first is not None and second is not None and not third.done()
    gate.open.set()
    last = await asyncio.wait_for(third, 1)
    assert last is not None and await asyncio.wait_for(last.stored, 1)
    assert table.state(b"AAPL")["last_offset"] == 5


async def test_a_full_queue_holds_the_next_batch_until_the_store_takes_it():
    proc, effects, table = make()
    proc.checkpoint.max_records = 2
    gate = gated(proc, effects)
    first = await proc.submit(batches()[0])  # taken by the store at once
    second = await proc.submit(batches()[1])  # queued: 2 records, the bound
    await the_third_waits_for_the_store(proc, gate, table, first, second)


async def test_the_queue_bound_counts_the_states_a_batch_changed():
    """A batch of small records over many symbols holds a state of about 12 KB for each until
    it is stored: the queue's byte bound counts them, not only the records' bytes."""
    proc, effects, table = make()
    gate = gated(proc, effects)
    first = await proc.submit(batches()[0])
    await settle()  # taken by the store, which waits on the gate
    second = await proc.submit(batches()[1])  # queued
    queued = proc.checkpoint.queued_bytes
    assert queued > sum(len(r.value or b"") for r in batches()[1])  # its state counts too
    proc.checkpoint.max_bytes = queued  # the state alone reaches the bound
    await the_third_waits_for_the_store(proc, gate, table, first, second)


async def test_stopping_leaves_what_is_queued_unstored_and_unacked():
    proc, effects, table = make()
    gated(proc, effects)
    acked, ack = acks()

    pending = await proc.submit(batches()[0], acker=ack)
    await settle()
    await proc.checkpoint.stop()
    assert await pending.stored is None and acked == [] and dict(table) == {}


async def test_a_revocation_during_the_retry_wait_drops_the_batch_waiting_to_apply():
    """The next batch waits on the lock the storer holds through its backoff: a revocation
    that cuts the wait short must not let it apply onto the stored state and be acked past
    the dropped one (its replay guard would skip the dropped record)."""
    proc, effects, table = make()
    proc.checkpoint.retry_delay = 5.0
    gate = gated(proc, effects)
    gate.fail_next = 1
    gate.open.set()
    acked, ack = acks()

    first = await proc.submit([tick("AAPL", T0, 10.0, 0)], acker=ack)
    await settle()  # its store failed: the storer waits out its backoff, holding the lock
    waiting = asyncio.ensure_future(proc.submit([tick("AAPL", T0 + 1000, 11.0, 1)], acker=ack))
    await settle()
    await asyncio.wait_for(proc.checkpoint.revoke(proc.revoke), 2)
    await asyncio.wait_for(waiting, 1)
    assert await first.stored is None and acked == [] and dict(table) == {}
    proc.revoked_generation = None  # assigned again: the records are read again
    assert len(await proc.process([tick("AAPL", T0, 10.0, 0), tick("AAPL", T0 + 1000, 11.0, 1)]))
    assert proc.stats["duplicates"] == 0 and [q.offset for q in effects.quotes] == [0, 1]


async def test_states_whose_changelog_write_failed_are_written_again_before_any_ack():
    """The table write succeeded and its changelog records were not acknowledged: applied
    again, the batch finds its records stored (the table holds them) and would be acked with
    nothing in Kafka. The storer writes those states again and waits for them first."""
    proc, effects, table = make()
    calls: list[str] = []

    async def durable() -> None:
        calls.append("fail" if not calls else "ok")
        if calls[-1] == "fail":
            raise RuntimeError("changelog record not acknowledged")

    proc.checkpoint.durable = durable
    acked: list[int] = []

    async def ack(records):
        acked.append(len(calls))
        acked.extend(r.offset for r in records)

    pending = await proc.submit([tick("AAPL", T0, 10.0, 0)], acker=ack)
    assert await asyncio.wait_for(pending.stored, 2)
    assert calls == ["fail", "ok"] and acked == [2, 0]
    assert [entry for entry in effects.log if entry[0] == "table"] == [("table", b"AAPL")] * 2


async def test_stopping_while_a_failed_store_waits_to_retry_resolves_and_forgets():
    proc, effects, table = make()
    proc.checkpoint.retry_delay = 5.0
    gate = gated(proc, effects)
    gate.fail_next = 1
    gate.open.set()
    waiter = asyncio.ensure_future(proc.process([tick("AAPL", T0, 10.0, 0)]))
    await settle()
    await proc.checkpoint.stop()
    assert await asyncio.wait_for(waiter, 1) == []
    assert proc.checkpoint.unstored == {} and "AAPL" not in proc.cache


async def test_a_cancelled_future_inside_a_commit_is_a_failed_store_not_a_stop():
    proc, effects, table = make()
    real, calls = effects.write, []

    async def write(quotes, candles, signals=()):
        calls.append(1)
        if len(calls) == 1:
            raise asyncio.CancelledError()  # e.g. a delivery the producer cancelled
        return await real(quotes, candles, signals)

    effects.write = write
    acked, ack = acks()

    first = await proc.submit([tick("AAPL", T0, 10.0, 0)], acker=ack)
    second = await proc.submit([tick("AAPL", T0 + 1000, 11.0, 1)], acker=ack)
    for p in (first, second):
        assert await asyncio.wait_for(p.stored, 2)
    assert acked == [0, 1] and [q.offset for q in effects.quotes] == [0, 1]


@pytest.mark.parametrize("chunk", [500, 1])
async def test_a_timer_close_queued_while_a_failed_store_waits_for_the_lock_is_given_up(
    chunk, monkeypatch
):
    """The tick takes the lock between the failure and the storer's recovery and queues its
    close: it must hear that the close is dropped, or it waits for it forever (with more
    chunks to go, while holding the lock the recovery needs)."""
    import stockapp.timer_close as timer_close

    monkeypatch.setattr(timer_close, "TIMER_CHUNK_SYMBOLS", chunk)
    now = {"ms": T0 + 30_000}
    answer = asyncio.Event()

    async def backlog(processed):
        await answer.wait()
        return dict.fromkeys(processed, 0)

    settings = load_settings()
    effects = Effects()
    table = Table(effects)
    proc = QuoteProcessor(
        settings,
        table,
        effects,
        effects.publish,
        clock=lambda: now["ms"] / 1000,
        port=Port(backlog=backlog),
    )
    proc.checkpoint.retry_delay = 0.01
    gate = gated(proc, effects)
    gate.open.set()
    await proc.process([tick("AAPL", T0 + 20_000, 10.0, 0), tick("MSFT", T0 + 20_000, 10.0, 1)])
    gate.open.clear()
    now["ms"] = T0 + 70_000
    batch = await proc.submit([tick("IBM", T0 + 61_000, 1.0, 2)])  # its store waits at the gate
    await settle()
    timer = asyncio.ensure_future(proc.on_timer())
    await settle()  # the tick asks the backlog
    await proc.lock.acquire()  # a batch being applied
    answer.set()
    await settle()  # the tick waits for the lock
    gate.fail_next = 1
    gate.open.set()  # the store fails: the storer waits for the lock, behind the tick
    await settle()
    proc.lock.release()
    await asyncio.wait_for(timer, 2)
    assert proc.stats["timer_retries"] == 1
    assert await asyncio.wait_for(batch.stored, 2)
    await proc.on_timer()  # finds the forgotten states again (a rescan)
    await proc.on_timer()  # and closes the minute
    assert {c.symbol for c in effects.candles if c.interval == "1m"} == {"AAPL", "MSFT"}


async def test_a_timer_close_is_stored_without_the_batches_applied_after_it():
    now = {"ms": T0 + 30_000}
    proc, effects, table = make()
    proc.clock = lambda: now["ms"] / 1000
    await proc.process([tick("TSLA", T0 + 20_000, 5.0, 0)])
    gate = gated(proc, effects)
    first = await proc.submit([tick("TSLA", T0 + 21_000, 6.0, 1)])
    await settle()  # being stored
    now["ms"] = T0 + 66_000
    proc.drained, proc.last_batch = True, 0.0
    timer = asyncio.ensure_future(proc.on_timer())
    await settle()
    after = await proc.submit([tick("TSLA", T0 + 65_000, 7.0, 2)])
    gate.open.set()
    await asyncio.wait_for(timer, 2)
    assert await asyncio.wait_for(after.stored, 2) and await first.stored
    # The batch, the close alone, then the batch after it: three writes.
    assert gate.calls == 3
    assert [c.interval for c in effects.candles if c.interval == "1m"] == ["1m"]
