"""RebalanceSafeConsumer's fetch loop: a record nothing can hold up is handed to the conductor
by a plain await; one that the conductor would wait over goes through ``wait_first`` as in
Faust, so that a rebalance stopping the flow still abandons it. Run on a real Faust app, its
conductor and a topic's queue (no Kafka: the fetches are given)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

from stockapp.faust_compat import RebalanceSafeConsumer
from tests.faust_rig import TP0, Rig


async def test_records_nothing_holds_up_are_handed_on_without_tasks():
    rig = Rig([list(range(0, 250)), list(range(250, 400))])
    await rig.consumer._drain_messages(rig.fetcher)
    assert rig.queued() == list(range(400))
    assert rig.through_wait_first == 0


async def drain_read_slowly(rig: Rig, count: int) -> list[int]:
    """Runs the fetch loop while a slow stream takes ``count`` records: the offsets taken."""
    taken: list[int] = []

    async def slow_stream() -> None:
        while len(taken) < count:
            event = await rig.topic.queue.get()
            taken.append(event.message.offset)
            await asyncio.sleep(0.001)

    reader = asyncio.ensure_future(slow_stream())
    await rig.consumer._drain_messages(rig.fetcher)
    await asyncio.wait_for(reader, 5)
    return taken


async def test_a_full_queue_waits_as_in_faust_and_loses_nothing():
    rig = Rig([list(range(100))], queue_size=8)
    assert await drain_read_slowly(rig, 100) == list(range(100))
    assert 0 < rig.through_wait_first < 100


async def test_a_rebalance_abandons_a_waiting_record_as_faust_does():
    """The queue is full and nobody reads it; the flow stops (a rebalance): the record the
    conductor was waiting to queue is abandoned, and the loop goes on (the records fetched
    after it go through ``wait_first`` too, abandoned at once), as Faust's own loop does."""

    async def run(drain: Any) -> tuple[list[int], int]:
        rig = Rig([list(range(12))], queue_size=4)

        async def rebalance() -> None:
            await asyncio.sleep(0.05)
            rig.consumer.stop_flow()
            rig.app.flow_control.suspend()

        stopper = asyncio.ensure_future(rebalance())
        await asyncio.wait_for(drain(rig.consumer, rig.fetcher), 5)
        await stopper
        return rig.queued(), rig.through_wait_first

    ours = await run(RebalanceSafeConsumer._drain_messages)
    faust = await run(FaustConsumer._drain_messages)
    assert ours[0] == faust[0] == [0, 1, 2, 3]
    assert ours[1] == 12 - 4  # the four queued at once were handed on without tasks


def hold_up(rig: Rig, hold: str) -> None:
    """Sets one condition under which the conductor may wait to queue a record."""
    conductor: Any = rig.app.topics
    loop = asyncio.get_running_loop()
    if hold == "flow stopped":
        rig.consumer.suspend_flow.set()
    elif hold == "flow suspended":
        rig.app.flow_control.suspend()
        loop.call_later(0.02, rig.app.flow_control.resume)
    elif hold == "subscription lock":
        loop.create_task(conductor._tp_to_callback_lock.acquire())
        loop.call_later(0.02, conductor._tp_to_callback_lock.release)
    elif hold == "producer buffer":
        rig.app.producer.buffer.max_messages = -1
        rig.app.producer.buffer.wait_until_ebb = _no_wait  # type: ignore[method-assign]


HOLDS = ["flow stopped", "flow suspended", "subscription lock", "producer buffer"]


@pytest.mark.parametrize("hold", HOLDS)
async def test_each_condition_that_can_hold_a_record_up_goes_as_in_faust(hold):
    async def run(drain: Any) -> tuple[list[int], int]:
        rig = Rig([[0, 1, 2]])
        await asyncio.sleep(0)  # the lock's acquiring task runs first
        hold_up(rig, hold)
        await asyncio.sleep(0)
        await asyncio.wait_for(drain(rig.consumer, rig.fetcher), 5)
        return rig.queued(), rig.through_wait_first

    ours = await run(RebalanceSafeConsumer._drain_messages)
    faust = await run(FaustConsumer._drain_messages)
    assert ours[0] == faust[0]
    assert ours[1] >= 1  # the first record at least went through wait_first


async def _no_wait() -> None:
    return None


def _events(rig: Rig) -> list[tuple]:
    out = []
    queue = rig.topic.queue
    while not queue.empty():
        event = queue.get_nowait()
        m = event.message
        out.append((type(event), event.key, event.value, event.headers, m.offset, m.refcount))
    return out


async def _both_paths(monkeypatch: Any, records: int) -> tuple[list, list, list[int]]:
    """The events queued from the same fetch of ``records`` records of a bytes topic by the
    direct path and by the conductor, and the offsets the direct path queued itself."""
    direct = Rig([list(range(records))], as_bytes=True)
    queued_directly: list[int] = []
    queue_as_fetched = direct.consumer._queue_as_fetched

    def counted(route: Any, m: Any) -> None:
        queued_directly.append(m.offset)
        queue_as_fetched(route, m)

    monkeypatch.setattr(direct.consumer, "_queue_as_fetched", counted)
    await direct.consumer._drain_messages(direct.fetcher)

    conducted = Rig([list(range(records))], as_bytes=True)
    monkeypatch.setattr(conducted.consumer, "_direct_route", lambda tp: None)
    await conducted.consumer._drain_messages(conducted.fetcher)
    return _events(direct), _events(conducted), queued_directly


async def test_a_bytes_topics_records_are_queued_as_the_conductor_queues_them(monkeypatch):
    """The quotes topic's records (bytes, raw codecs) skip the conductor's decoding: the events
    queued are those it would queue, the same type, key, value, headers and refcount."""
    ours, theirs, _ = await _both_paths(monkeypatch, 300)
    assert len(ours) == 300 and ours == theirs
    assert ours[7][1:5] == (b"k", b"7", {}, 7)


async def test_records_without_a_value_or_with_headers_are_queued_as_the_conductor_queues_them(
    monkeypatch,
):
    """A record without a value (a tombstone), and one without a key but with headers: the
    direct path queues the event the conductor's decoding makes of each (the raw codec passes
    None on)."""
    from tests import faust_rig

    plain = faust_rig.message

    def odd_message(offset: int, generation: int = 0) -> Any:
        m = plain(offset, generation)
        if offset % 3 == 1:
            m.value = None
        if offset % 3 == 2:
            m.key = None
            m.headers = [("stockapp.source", b"csv"), ("trace", b"%d" % offset)]
        return m

    monkeypatch.setattr(faust_rig, "message", odd_message)  # what the rigs' fetches make
    ours, theirs, queued_directly = await _both_paths(monkeypatch, 30)
    assert queued_directly == list(range(30))  # every one by the direct path
    assert len(ours) == 30 and ours == theirs
    assert ours[1][1:3] == (b"k", None)
    assert ours[2][1] is None and ours[2][3] == {"stockapp.source": b"csv", "trace": b"2"}


async def test_other_topics_go_through_the_conductor():
    rig = Rig([list(range(5))])  # untyped: the conductor decodes
    routes = []
    original = rig.consumer._direct_route

    def spy(tp: Any) -> Any:
        routes.append(original(tp))
        return routes[-1]

    rig.consumer._direct_route = spy
    await rig.consumer._drain_messages(rig.fetcher)
    assert routes == [None] * 5 and rig.queued() == list(range(5))


async def test_a_rebalance_routes_anew():
    """The conductor's index is rebuilt on each assignment: a route is worked out again when
    its partition's channel set is another one."""
    rig = Rig([[0, 1], [2, 3]], as_bytes=True)
    conductor: Any = rig.app.topics
    first = rig.consumer._direct_route(TP0)
    assert first is not None and rig.consumer._direct_route(TP0) is first
    channels = conductor._tp_index.pop(TP0)
    conductor._tp_index[TP0] = set(channels)  # as _update_tp_index after clear()
    second = rig.consumer._direct_route(TP0)
    assert second is not None and second is not first and second.queue is first.queue
    conductor._tp_index[TP0].add(rig.app.topic("another", key_type=bytes, value_type=bytes))
    assert rig.consumer._direct_route(TP0) is None  # two channels: the conductor's way


async def test_a_queue_under_pressure_pauses_its_partition_as_with_the_conductor(monkeypatch):
    """Past the queue's pressure mark, the fetcher is told to stop taking the partition, as
    the conductor tells it; nothing is lost when the queue then fills."""
    told: dict[int, list[Any]] = {}

    original = RebalanceSafeConsumer.on_buffer_full

    def on_buffer_full(self: Any, tp: Any) -> None:  # before the rigs: the conductor binds it
        told.setdefault(id(self), []).append(tp)
        original(self, tp)  # which takes Faust's TP only

    monkeypatch.setattr(RebalanceSafeConsumer, "on_buffer_full", on_buffer_full)

    async def paused(rig: Rig) -> list[Any]:
        assert await drain_read_slowly(rig, 40) == list(range(40))
        return told.get(id(rig.consumer), [])

    direct = await paused(Rig([list(range(40))], queue_size=8, as_bytes=True))
    conducted_rig = Rig([list(range(40))], queue_size=8, as_bytes=True)
    monkeypatch.setattr(conducted_rig.consumer, "_direct_route", lambda tp: None)
    conducted = await paused(conducted_rig)
    assert direct and conducted and set(direct) == set(conducted) == {TP0}
    assert all(type(tp) is type(TP0) for tp in direct + conducted)


async def test_what_only_other_tasks_change_is_asked_again_only_after_they_could_run():
    """250 records of one fetch: the loop lets others run after each 100 (YIELD_EVERY_RECORDS),
    so the flow, the lock and the producer's buffer are asked 3 times, not 250."""
    rig = Rig([list(range(250))], as_bytes=True)
    asked = 0
    original = rig.consumer._nothing_held_up

    def counted() -> bool:
        nonlocal asked
        asked += 1
        return original()

    rig.consumer._nothing_held_up = counted
    await rig.consumer._drain_messages(rig.fetcher)
    assert rig.queued() == list(range(250))
    assert asked == 3


async def test_a_rebalance_another_task_starts_mid_fetch_is_seen_at_the_next_pause():
    """The flow stops while the loop hands a fetch on: the records after its next pause go
    through wait_first and are abandoned, as in Faust; those before were queued."""
    rig = Rig([list(range(250))], as_bytes=True)

    def rebalance() -> None:
        rig.consumer.stop_flow()
        rig.app.flow_control.suspend()

    queue_as_fetched = rig.consumer._queue_as_fetched

    def queued(route: Any, message: Any) -> None:
        if message.offset == 50:  # due now; runs when the loop next lets others run
            asyncio.get_running_loop().call_soon(rebalance)
        queue_as_fetched(route, message)

    rig.consumer._queue_as_fetched = queued
    await asyncio.wait_for(rig.consumer._drain_messages(rig.fetcher), 5)
    assert rig.queued() == list(range(100))  # the pause comes before the 101st
    assert rig.through_wait_first == 150
