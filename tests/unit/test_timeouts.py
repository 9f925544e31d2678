"""stockapp.timeouts.within: a bound that keeps a cancellation (3.11's wait_for loses it)."""

import asyncio

import pytest

from stockapp.timeouts import within


async def test_a_cancellation_as_the_awaited_call_completes_is_kept():
    # The race that 3.11's wait_for loses: the awaited future completes and the caller is
    # cancelled before the caller runs again. The caller must end cancelled, not with 1.
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    caller = asyncio.create_task(within(5, done))
    await asyncio.sleep(0)  # the caller now waits on the future
    done.set_result(1)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_result_in_time_is_returned():
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await within(1, answer()) == 42


async def test_past_the_bound_raises_timeout_and_cancels_the_call():
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        await within(0.01, forever())
    assert cancelled.is_set()
