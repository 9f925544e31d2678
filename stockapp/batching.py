"""When the agent stops collecting records and processes them as one batch.

Faust's ``noack_take`` yields what its stream could hand over in ``STOCKAPP_BATCH_WITHIN_MS``,
and while a batch is processed nothing is added to the next: under a backlog a take holds a
few hundred records however many wait in Kafka. Each batch costs about one Cassandra
statement and one changelog write per symbol it touches, so small batches of many symbols
cost about that per record. Behind the stream, the agent therefore joins takes into one
batch, up to ``STOCKAPP_BATCH_MAX`` records or ``STOCKAPP_BATCH_COLLECT_MS``; caught up, it
processes each take at once, so live latency stays that of one take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def waiting_after(
    offsets: Iterable[tuple[int, int]], highwater: Callable[[int], int | None]
) -> int:
    """Records already in Kafka after the last of ``offsets`` ((partition, offset) pairs) in
    each of their partitions; ``highwater(partition)`` is the partition's end as the
    consumer last saw it (None: not known, counted as nothing waiting)."""
    last: dict[int, int] = {}
    for partition, offset in offsets:
        if offset > last.get(partition, -1):
            last[partition] = offset
    waiting = 0
    for partition, offset in last.items():
        end = highwater(partition)
        if end is not None and end > offset + 1:
            waiting += end - (offset + 1)
    return waiting


def keep_collecting(
    held: int, waiting: int, held_for: float, batch_max: int, collect_max: float
) -> bool:
    """Whether to take more records before processing the ``held`` ones: only while more
    records wait in Kafka than are held (a backlog, not the few in flight of a live stream),
    and within the batch's size and time bounds."""
    return held < batch_max and waiting > held and held_for < collect_max
