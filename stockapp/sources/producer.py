"""The Kafka producer every source publishes through.

Idempotent (no duplicates when it retries), ``acks=all``, batched. Quotes are appended straight
into per-partition record batches (partition = Kafka's default partitioner on the symbol), which
costs a fraction of one ``send()`` per record and lets one process publish tens of thousands of
quotes a second. At most ``max_batches_in_flight`` batches are unacknowledged at once: a source
faster than Kafka waits here instead of growing memory. aiokafka reconnects by itself when a
broker restarts; a batch that still fails is counted as failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import orjson

from stockapp.partitioning import partition_for
from stockapp.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SendSummary:
    sent: Counter[str] = field(default_factory=Counter)  # acknowledged, by symbol
    failed: int = 0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def line(self) -> str:
        symbols = ", ".join(f"{s} {n}" for s, n in sorted(self.sent.items()))
        return f"sent {self.total} quotes ({symbols or 'none'}); {self.failed} failed"


class QuoteProducer:
    def __init__(
        self,
        settings: Settings,
        max_batches_in_flight: int = 64,
        delivery_timeout_ms: int = 120_000,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_quotes
        self.partitions = settings.quotes_partitions
        self.max_in_flight = max_batches_in_flight
        self.summary = SendSummary()
        self.delivery_timeout_ms = delivery_timeout_ms
        self._producer = None
        self._pending: set[asyncio.Future] = set()

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=",".join(self.settings.kafka_bootstrap),
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            max_batch_size=256 * 1024,
            # A broker that died with requests in flight is given up on (and retried) after
            # this long; 10 s keeps a restart from stalling the source for half a minute.
            request_timeout_ms=10_000,
        )
        await self._producer.start()

    async def send_many(self, quotes: list[dict]) -> None:
        """Queue quotes (keyed by symbol, order kept per symbol); waits while too many batches
        are unacknowledged."""
        batches: dict[int, tuple] = {}
        for quote in quotes:
            symbol = quote["symbol"]
            key = symbol.encode()
            partition = partition_for(key, self.partitions)
            entry = batches.get(partition)
            if entry is None:
                entry = batches[partition] = (self._producer.create_batch(), Counter())
            value = orjson.dumps(quote)
            if entry[0].append(key=key, value=value, timestamp=None) is None:  # batch full
                await self._ship(partition, *entry)
                entry = batches[partition] = (self._producer.create_batch(), Counter())
                entry[0].append(key=key, value=value, timestamp=None)
            entry[1][symbol] += 1
        for partition, entry in batches.items():
            await self._ship(partition, *entry)

    async def _ship(self, partition: int, batch: object, symbols: Counter[str]) -> None:
        while len(self._pending) >= self.max_in_flight:
            await asyncio.wait(list(self._pending), return_when=asyncio.FIRST_COMPLETED)
        from aiokafka.errors import KafkaTimeoutError

        batch.close()
        while True:
            try:
                future = await self._producer.send_batch(batch, self.topic, partition=partition)
                break
            except KafkaTimeoutError:
                # The broker is unreachable (restarting?): keep the batch and try again, so
                # the source waits for Kafka instead of dropping quotes or dying.
                log.warning("Kafka did not take a batch for partition %d; retrying", partition)
        self._pending.add(future)
        future.add_done_callback(lambda f: self._done(f, symbols))

    def _done(self, future: asyncio.Future, symbols: Counter[str]) -> None:
        self._pending.discard(future)
        if future.cancelled() or future.exception() is not None:
            self.summary.failed += sum(symbols.values())
            log.warning(
                "a batch of %d quotes could not be delivered: %s",
                sum(symbols.values()),
                None if future.cancelled() else future.exception(),
            )
        else:
            self.summary.sent.update(symbols)

    async def close(self) -> SendSummary:
        """Flush what is queued, wait for the acknowledgements, stop."""
        if self._producer is not None:
            try:
                await self._producer.flush()
                if self._pending:
                    await asyncio.wait(list(self._pending), timeout=self.delivery_timeout_ms / 1000)
            finally:
                await self._producer.stop()
                self._producer = None
        return self.summary

    async def __aenter__(self) -> QuoteProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
