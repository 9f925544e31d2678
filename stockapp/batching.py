"""Batches for the quotes agent: the stream's takes, joined while the worker is behind.

Faust's ``noack_take(max, within)`` yields what the stream delivered within ``within`` of the
previous batch being taken, and buffers nothing while the agent processes a batch. Under a
backlog a batch therefore holds about ``within`` of Faust's delivery rate (some 500 records),
and each batch costs about a Cassandra statement and a changelog write per symbol it touches:
with many symbols, small batches cost about that per record. Joining takes while more records
already wait in Kafka makes the per-symbol costs per batch, not per record, without making a
caught-up worker wait: a take that leaves nothing waiting is processed at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")


async def joined_batches(
    takes: AsyncIterator[list[T]],
    *,
    max_records: int,
    join_seconds: float,
    behind: Callable[[list[T]], bool],
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[list[T]]:
    """The takes of ``takes``, joined into batches while ``behind(take)`` says that more of
    the stream already waits (a backlog), up to ``max_records`` records, and holding no
    record longer than ``join_seconds``: if the next take does not come in time, what was
    joined goes on alone. A take after which nothing waits goes on at once, joined or not.

    The next take is asked for before a batch is handed on, so the stream fills it while the
    batch is processed. Cancelled or closed (the worker stops), the take in flight is
    cancelled too; the records it held were not processed, hence not acknowledged.
    """
    it = takes.__aiter__()
    pending: list[T] = []
    started = 0.0
    next_take: asyncio.Future[list[T]] | None = None
    try:
        while True:
            if next_take is None:
                next_take = asyncio.ensure_future(it.__anext__())
            if pending:
                left = started + join_seconds - clock()
                done, _ = await asyncio.wait({next_take}, timeout=max(left, 0.0))
                if not done:  # the next take is late: the joined records go on alone
                    batch, pending = pending, []
                    yield batch
                    continue
            else:
                await asyncio.wait({next_take})
            try:
                take = next_take.result()
            except StopAsyncIteration:
                next_take = None
                break
            next_take = asyncio.ensure_future(it.__anext__())
            if not pending:
                started = clock()
            pending.extend(take)
            if len(pending) < max_records and clock() - started < join_seconds and behind(take):
                continue
            batch, pending = pending, []
            yield batch
        if pending:
            yield pending
    finally:
        if next_take is not None:
            if not next_take.done():
                next_take.cancel()
            elif not next_take.cancelled():
                # Taken (an error, or the stream's end at shutdown) but never used: looked at
                # here, or asyncio logs "Task exception was never retrieved".
                next_take.exception()


def split_by_size(items: list[T], size: Callable[[T], int], limit: int) -> list[list[T]]:
    """``items`` in order, cut into runs whose sizes add up to at most ``limit`` (a single item
    over it makes a run of its own)."""
    runs: list[list[T]] = []
    run: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if run and total + n > limit:
            runs.append(run)
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        runs.append(run)
    return runs
