"""The quotes agent's delivery (stockapp/delivery.py): lists taken from the channel's queue,
in fetch order, each event tracked as Faust's stream tracks it, events from before a
rebalance skipped; and the same events, acks and acked offsets as Faust's ``noack_take``
on the same fetches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from stockapp.delivery import fetched_batches
from tests.faust_rig import TP0, Rig


def offsets(events: list[Any]) -> list[int]:
    return [event.message.offset for event in events]


async def take(batches: Any, count: int) -> list[list[Any]]:
    """Lists from ``batches`` until ``count`` events came (at most 5 s)."""
    got: list[list[Any]] = []

    async def run() -> None:
        while sum(map(len, got)) < count:
            got.append(await anext(batches))

    await asyncio.wait_for(run(), 5)
    return got


async def ack_all(stream: Any, lists: list[list[Any]]) -> None:
    for events in lists:
        for event in events:
            await stream.ack(event)


async def test_a_backlog_is_taken_in_full_lists_in_fetch_order_and_tracked():
    rig = Rig([list(range(7000)), list(range(7000, 12_000))], queue_size=20_000)
    await rig.consumer._drain_messages(rig.fetcher)
    stream = rig.app.stream(rig.topic)
    lists = await take(fetched_batches(stream, 5000, 0.05), 12_000)
    assert [len(events) for events in lists] == [5000, 5000, 2000]
    assert sum(map(offsets, lists), []) == list(range(12_000))
    assert len(rig.consumer.unacked) == 12_000  # tracked, as the stream tracks them
    await ack_all(stream, lists)
    assert not rig.consumer.unacked
    assert list(rig.consumer._acked[TP0]) == list(range(12_000))


async def test_records_fetched_before_a_rebalance_are_skipped_unacked():
    rig = Rig([list(range(10)), list(range(10, 20))])
    fetched = rig.consumer.getmany

    async def getmany(timeout: float) -> Any:
        async for item in fetched(timeout):
            yield item
        rig.generation = 1  # the second fetch is the new generation's

    rig.consumer.getmany = getmany
    await rig.consumer._drain_messages(rig.fetcher)
    rig.app.consumer_generation_id = 1  # the rebalance done: offsets 0-9 are stale
    stream = rig.app.stream(rig.topic)
    lists = await take(fetched_batches(stream, 5000, 0.05), 10)
    assert sum(map(offsets, lists), []) == list(range(10, 20))
    assert not rig.consumer._acked.get(TP0)  # nothing acked for the stale ones
    assert len(rig.consumer.unacked) == 10  # nor tracked


async def test_a_suspended_flow_skips_what_is_queued():
    rig = Rig([list(range(5))])
    await rig.consumer._drain_messages(rig.fetcher)
    rig.app.flow_control.suspend()
    stream = rig.app.stream(rig.topic)
    batches = fetched_batches(stream, 5000, 0.05)
    pending = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.1)
    assert not pending.done()  # all five skipped; waiting for more
    assert rig.topic.queue.empty()
    assert not rig.consumer.unacked
    pending.cancel()


async def test_the_lists_end_when_faust_stops_the_agent():
    """Faust stops an agent's reading by throwing StopAsyncIteration into its channel's queue
    (``Actor.cancel``), while the agent waits on it or with events still queued: the lists
    end, where an escaped StopAsyncIteration would crash the agent (a RuntimeError)."""
    rig = Rig([list(range(3))])
    await rig.consumer._drain_messages(rig.fetcher)
    stream = rig.app.stream(rig.topic)
    batches = fetched_batches(stream, 5000, 0.05)
    assert offsets(await anext(batches)) == [0, 1, 2]
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.01)
    stream.channel._throw(StopAsyncIteration())  # the agent waits on the empty queue
    with pytest.raises(StopAsyncIteration):  # the lists went on otherwise
        await asyncio.wait_for(waiting, 1)

    queued = Rig([list(range(3))])
    await queued.consumer._drain_messages(queued.fetcher)
    stream = queued.app.stream(queued.topic)
    stream.channel._throw(StopAsyncIteration())  # events still queued
    assert [batch async for batch in fetched_batches(stream, 5000, 0.05)] == []


async def test_events_taken_when_faust_stops_the_agent_stay_unacked():
    """Stopped while a list is being filled (three events taken, waiting ``within`` for
    more): the list is not handed on, and its events are tracked and unacked, so no commit
    passes them and a restart fetches them again."""
    rig = Rig([list(range(3))])
    await rig.consumer._drain_messages(rig.fetcher)
    stream = rig.app.stream(rig.topic)
    filling = asyncio.ensure_future(anext(fetched_batches(stream, 5000, 5.0)))
    await asyncio.sleep(0.05)
    assert rig.topic.queue.empty() and len(rig.consumer.unacked) == 3  # taken, waiting
    stream.channel._throw(StopAsyncIteration())
    with pytest.raises(StopAsyncIteration):  # a list was handed on otherwise
        await asyncio.wait_for(filling, 1)
    assert len(rig.consumer.unacked) == 3
    assert not rig.consumer._acked.get(TP0)


async def test_faust_monitor_is_told_when_a_partition_was_taken_from():
    """Faust's stalled-stream check (``verify_event_path``) logs an error for a partition with
    records waiting whose stream took none for ``stream_processing_timeout``; it reads the
    time from the monitor, which Faust's stream sets per event and this path per list."""
    rig = Rig([list(range(10))])
    await rig.consumer._drain_messages(rig.fetcher)
    stream = rig.app.stream(rig.topic)
    inbound = rig.app.monitor.stream_inbound_time
    assert TP0 not in inbound
    before = time.monotonic()
    await take(fetched_batches(stream, 5000, 0.05), 10)
    assert before <= inbound[TP0] <= time.monotonic()


async def test_the_same_events_and_acks_as_faust_noack_take():
    fetches = [list(range(n, n + 900)) for n in range(0, 9000, 900)]

    async def run(noack_take: bool) -> tuple[list[int], list[int], list[int]]:
        rig = Rig(fetches, queue_size=20_000)
        await rig.consumer._drain_messages(rig.fetcher)
        stream = rig.app.stream(rig.topic)
        batches = (
            stream.noack_take(5000, within=0.05)
            if noack_take
            else fetched_batches(stream, 5000, 0.05)
        )
        lists = await take(batches, 9000)
        sizes = [len(events) for events in lists]
        await ack_all(stream, lists)
        if noack_take:
            await stream.stop()
        return sum(map(offsets, lists), []), sizes, list(rig.consumer._acked[TP0])

    ours, faust = await run(False), await run(True)
    assert ours[0] == faust[0] == list(range(9000))
    assert ours[2] == faust[2]
    assert ours[1] == [5000, 4000]
