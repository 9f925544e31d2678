"""What the stream gives the processor: one port (a Protocol), not seven optional callables.

The worker's adapter (``agents/quotes.WorkerPort``) answers from Faust, aiokafka and
Cassandra; :class:`Detached` answers as a stream that knows nothing (unit tests, tools): no
backlog, no seeds, every partition owned, no topic id, no consumer generation.
"""

from __future__ import annotations

from typing import Any, Protocol

from stockapp.checkpoint import Durable

__all__ = ["Detached", "StreamPort"]


class StreamPort(Protocol):
    # Whether ``backlog`` can tell what waits in a partition. A stream that cannot closes by
    # the timer as if nothing waited.
    knows_backlog: bool
    # Awaited before a change's offsets may be acked: the state written is in its changelog
    # (None: the table has no changelog to wait for).
    durable: Durable | None

    async def backlog(self, processed: dict[int, int | None]) -> dict[int, int | None]:
        """{partition: last offset processed there since start, or None} -> {partition:
        records not processed yet, or None: cannot tell}. One call answers every partition a
        timer tick asks about, so that the end offsets can be fresh from the broker (one
        request), not the ones the consumer last fetched, which a stall leaves behind."""
        ...

    async def seeds(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """{symbol: SymbolState dict} of the symbols that have a backfill seed."""
        ...

    def owned(self) -> set[int] | None:
        """The quotes partitions this worker is assigned now (None: not known yet)."""
        ...

    async def topic_id(self) -> str | None:
        """The quotes topic's id (None: cannot tell, e.g. a broker older than Kafka 2.8)."""
        ...

    def generation(self) -> int | None:
        """The consumer group generation now (None: the stream has none; nothing is stale)."""
        ...


class Detached:
    """A stream that knows nothing beyond the records it hands over."""

    knows_backlog = False
    durable: Durable | None = None

    async def backlog(self, processed: dict[int, int | None]) -> dict[int, int | None]:
        return dict.fromkeys(processed, 0)

    async def seeds(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        return {}

    def owned(self) -> set[int] | None:
        return None

    async def topic_id(self) -> str | None:
        return None

    def generation(self) -> int | None:
        return None
