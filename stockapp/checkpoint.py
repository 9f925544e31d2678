"""The one owner of the order in which a change is made durable (docs/streaming.md).

A batch of quotes and a timer close both end in a :class:`Change`; the agent, the timer and
the revocation handler all go through :class:`Checkpoint`, so the order that makes a crash
harmless is written once:

1. raw quotes, closed candles and final signals are written to Cassandra, and acknowledged
   (then the ``stored`` listeners hear of the candles: what reads Cassandra may now see them);
2. side outputs (late records, dead letters), candles and signals are queued on the producer
   one after the other, then their deliveries are awaited together;
3. the changed symbol states are written to the table, and their changelog records are
   awaited until Kafka acknowledged them (Faust's own flush before a commit can leave them in
   its buffer: see faust_compat.DurableTable);
4. only then may the agent ack the records' offsets (:meth:`Checkpoint.ackable`).

A crash before 3 replays the batch onto the old state and rewrites the same rows; a crash
after 3 replays records at or below each symbol's ``last_offset``, which are skipped. A step
that fails raises, and nothing after it happens: the caller retries from the stored state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from stockapp.models import QuoteRow
from stockapp.records import RawRecord, SideOutput
from stockapp.side_outputs import Publisher, SideOutputs
from stockapp.tables.candle import Candle
from stockapp.tables.signals.signal import Signal

log = logging.getLogger(__name__)

# Returns once the table's writes so far are durable (their changelog records acknowledged)
Durable = Callable[[], Awaitable[None]]
# Told of the closed candles once Cassandra acknowledged them (the web's candle cache).
StoredListener = Callable[[Sequence[Candle]], None]


class Writer(Protocol):
    async def write(
        self, quotes: Iterable[QuoteRow], candles: Iterable[Candle], signals: Iterable[Signal]
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Change:
    """What one batch or one timer close stores and publishes."""

    quotes: Sequence[QuoteRow]  # raw rows to store (empty when raw rows are off)
    closed: Sequence[Candle]
    signals: Sequence[Signal]  # provisional ones are published, never stored
    outputs: Sequence[SideOutput]
    states: dict[str, bytes]  # the encoded states of the symbols it touched


@dataclass(frozen=True, slots=True)
class Topics:
    candles: str
    signals: str


def candle_message(candle: Candle, indicators: dict[str, float | None]) -> bytes:
    """The JSON of a candle on the candles topic (docs/streaming.md)."""
    return orjson.dumps(
        {
            "symbol": candle.symbol,
            "interval": candle.interval,
            "start": candle.start,
            "end": candle.end,
            "open": candle.open,
            "high": candle.high,
            "low": candle.low,
            "close": candle.close,
            "volume": candle.volume,
            "trades": candle.trades,
            "closed": candle.closed,
            "indicators": indicators,
        }
    )


class Checkpoint:
    """Makes changes durable in the order above; serialises them with revocations."""

    def __init__(
        self,
        writer: Writer,
        publish: Publisher,
        table: MutableMapping[bytes, Any],
        topics: Topics,
        side_outputs: SideOutputs,
        durable: Durable | None = None,
    ) -> None:
        self.writer = writer
        self.publish = publish
        self.table = table
        self.topics = topics
        self.side_outputs = side_outputs
        self.durable = durable
        # Held by a batch, a timer close and a revocation: each sees the others' changes
        # whole, and a revocation finds no change half made.
        self.lock = asyncio.Lock()
        # Records handed to the producer and not yet acknowledged by the broker (a worker that
        # waits on Kafka shows it here).
        self.pending_sends = 0
        self.stored_listeners: list[StoredListener] = []

    async def commit(self, change: Change) -> None:
        """Stores and publishes the change in the order of the module's docstring. Call with
        the lock held."""
        final = [signal for signal in change.signals if not signal.provisional]
        if change.quotes or change.closed or final:
            await self.writer.write(change.quotes, change.closed, final)
            if change.closed:
                for listener in self.stored_listeners:
                    try:
                        listener(change.closed)
                    except Exception:  # a reader's view must not fail what is stored
                        log.exception("a listener of stored candles failed")
        await self._deliver(change)
        for symbol, data in change.states.items():
            self.table[symbol.encode()] = data
        if change.states and self.durable is not None:
            # The agent acks the batch next, and its offsets may be committed at once: the
            # states that cover them must be in Kafka first (faust_compat.DurableTable).
            await self.durable()

    async def _deliver(self, change: Change) -> None:
        # Queued one after the other, then awaited together: records queued concurrently
        # all wait on the same full producer batch and wake together each time one drains
        # (docs/operations.md#problems-seen-and-fixed).
        deliveries: list[Awaitable[Any]] = []
        for output in change.outputs:
            deliveries.append(await self.side_outputs.send(output, self.publish))
        for candle in change.closed:
            message = candle_message(candle, candle.indicators)
            deliveries.append(
                await self.publish(self.topics.candles, candle.symbol.encode(), message, [])
            )
        for signal in change.signals:
            message = orjson.dumps(signal.to_json())
            deliveries.append(
                await self.publish(self.topics.signals, signal.key.encode(), message, [])
            )
        if not deliveries:
            return
        # The state write after this moves the replay guard past these records: it waits for
        # the broker's acknowledgements (a failed delivery raises and the change is retried).
        self.pending_sends = len(deliveries)
        try:
            await asyncio.gather(*deliveries)
        finally:
            self.pending_sends = 0

    @staticmethod
    def ackable(records: Sequence[RawRecord], applied: Sequence[RawRecord]) -> list[bool]:
        """Which of a batch's records the agent may ack once :meth:`commit` returned: those
        applied. Records left out were fetched before a rebalance: unacked, they are fetched
        again from the committed offset (an ack would let the next commit pass them)."""
        if len(applied) == len(records):
            return [True] * len(records)
        done = {id(record) for record in applied}
        return [id(record) in done for record in records]

    async def revoke(self, forget: Callable[[], None]) -> None:
        """A rebalance is taking partitions: once the change in flight is made (the lock),
        ``forget`` the states, and wait until every state written is in the changelog.

        Faust flushed its producer before telling us, but a change in flight wrote its
        states after that: their changelog records must be in Kafka before the new
        assignment's recovery reads the changelog, or it would restore older states while
        the batch's offsets get committed. (:meth:`commit` waits for them itself before the
        agent acks; this covers a batch cut short.)"""
        async with self.lock:
            forget()
            if self.durable is not None:
                await self.durable()
