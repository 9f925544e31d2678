"""joined_batches: takes joined while the worker is behind, at once when it is not, and no
record held past the join limit."""

import asyncio
import gc

from stockapp.batching import joined_batches


async def takes(*items: list[int] | float):
    """Yields each list as a take; a number sleeps that many seconds first."""
    for item in items:
        if isinstance(item, float):
            await asyncio.sleep(item)
        else:
            yield item


async def collect(source, **kwargs) -> list[list[int]]:
    return [batch async for batch in joined_batches(source, **kwargs)]


async def test_a_caught_up_worker_gets_each_take_at_once():
    got = await collect(
        takes([1, 2], [3], [4, 5]), max_records=100, join_seconds=1.0, behind=lambda t: False
    )
    assert got == [[1, 2], [3], [4, 5]]


async def test_takes_are_joined_while_behind_up_to_the_batch_size():
    waiting = {2: True, 3: True, 5: True, 6: False, 8: True}  # last record of a take -> behind
    got = await collect(
        takes([1, 2], [3], [4, 5], [6], [7, 8], [9]),
        max_records=4,
        join_seconds=10.0,
        behind=lambda take: waiting.get(take[-1], False),
    )
    # [1..5] reaches 4 records: handed on although behind; [6] leaves nothing waiting;
    # [7, 8] is behind and the stream ends: what was joined still goes on.
    assert got == [[1, 2, 3, 4, 5], [6], [7, 8, 9]]


async def test_no_record_waits_past_the_join_limit_for_a_late_take():
    got = []
    began = asyncio.get_running_loop().time()
    async for batch in joined_batches(
        takes([1], [2], 0.5, [3]), max_records=100, join_seconds=0.1, behind=lambda t: True
    ):
        got.append((batch, round(asyncio.get_running_loop().time() - began, 1)))
    assert got[0] == ([1, 2], 0.1)  # the next take came only after 0.5 s
    assert got[1][0] == [3]


async def test_stopping_cancels_the_take_in_flight():
    cancelled = asyncio.Event()

    async def endless():
        yield [1]
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield [2]

    batches = joined_batches(endless(), max_records=10, join_seconds=1.0, behind=lambda t: False)
    assert await batches.__anext__() == [1]
    await asyncio.sleep(0.01)  # the next take is under way (the stream waits for records)
    await batches.aclose()
    await asyncio.wait_for(cancelled.wait(), 1.0)


async def test_a_take_ended_while_stopping_is_not_reported_as_unretrieved():
    """At shutdown the stream may end (or fail) after the next take was asked for and before
    the agent asks for it: closing must look at that take's outcome, or asyncio logs "Task
    exception was never retrieved" when it is collected."""
    unretrieved: list[dict] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))

    batches = joined_batches(takes([1]), max_records=10, join_seconds=1.0, behind=lambda t: False)
    assert await batches.__anext__() == [1]
    await asyncio.sleep(0.01)  # the stream has ended: the prefetched take holds that
    await batches.aclose()
    del batches
    gc.collect()
    await asyncio.sleep(0)
    assert unretrieved == []


def test_a_batch_is_cut_where_its_size_passes_the_limit():
    from stockapp.batching import split_by_size

    sizes = [3, 3, 3, 10, 1, 1]
    assert split_by_size(sizes, lambda n: n, 6) == [[3, 3], [3], [10], [1, 1]]
    assert split_by_size([], lambda n: n, 6) == []
