"""RebalanceSafeConsumer's fetch loop: a record nothing can hold up is handed to the conductor
by a plain await; one that the conductor would wait over goes through ``wait_first`` as in
Faust, so that a rebalance stopping the flow still abandons it. Run on a real Faust app, its
conductor and a topic's queue (no Kafka: the fetches are given)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP
from faust.types.tuples import Message

from stockapp.faust_compat import RebalanceSafeConsumer, SafeSeekApp

TOPIC = "fetch-loop-quotes"
TP0 = TP(TOPIC, 0)


def message(offset: int) -> Message:
    return Message(TOPIC, 0, offset, 0.0, 0, None, b"k", str(offset).encode(), None, tp=TP0)


class Fetcher:
    """What the loops read of Faust's fetcher service: whether it stops."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()

    @property
    def should_stop(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()


class Rig:
    """A Faust app with its consumer (ours), its conductor delivering ``TP0`` into one
    topic's queue, and fetches played from a list; the fetcher stops after the last."""

    def __init__(self, fetches: list[list[int]], queue_size: int = 10_000) -> None:
        self.app = SafeSeekApp(
            "fetch-loop",
            broker="kafka://127.0.0.1:1",
            store="memory://",
            stream_buffer_maxsize=queue_size,
        )
        self.consumer: Any = self.app.consumer  # a RebalanceSafeConsumer
        topic = self.app.topic(TOPIC, key_serializer="raw", value_serializer="raw")
        self.topic: Any = topic.clone(is_iterator=True)  # what a stream reads
        conductor: Any = self.app.topics
        conductor._tp_index[TP0].add(self.topic)
        conductor._update_callback_map()
        self.app.flow_control.resume()
        self.fetcher = Fetcher()
        self.fetches = [list(fetch) for fetch in fetches]
        self.consumer.getmany = self.getmany  # type: ignore[method-assign]
        self.through_wait_first = 0
        wait_first = self.consumer.wait_first

        async def counted(*coros: Any, **kwargs: Any) -> Any:
            self.through_wait_first += 1
            return await wait_first(*coros, **kwargs)

        self.consumer.wait_first = counted  # type: ignore[method-assign]

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        if not self.fetches:
            self.fetcher.stop()
            await asyncio.sleep(0)
            return
        for offset in self.fetches.pop(0):
            yield TP0, message(offset)
        if not self.fetches:
            self.fetcher.stop()

    def queued(self) -> list[int]:
        out = []
        queue = self.topic.queue
        while not queue.empty():
            out.append(queue.get_nowait().message.offset)
        return out


async def test_records_nothing_holds_up_are_handed_on_without_tasks():
    rig = Rig([list(range(0, 250)), list(range(250, 400))])
    await rig.consumer._drain_messages(rig.fetcher)
    assert rig.queued() == list(range(400))
    assert rig.through_wait_first == 0


async def test_a_full_queue_waits_as_in_faust_and_loses_nothing():
    rig = Rig([list(range(100))], queue_size=8)
    taken: list[int] = []

    async def slow_stream() -> None:
        while len(taken) < 100:
            event = await rig.topic.queue.get()
            taken.append(event.message.offset)
            await asyncio.sleep(0.001)

    reader = asyncio.ensure_future(slow_stream())
    await rig.consumer._drain_messages(rig.fetcher)
    await asyncio.wait_for(reader, 5)
    assert taken == list(range(100))
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
