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
from tests.faust_rig import Rig


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
