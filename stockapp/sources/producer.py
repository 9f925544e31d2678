"""The Kafka producer every source publishes through.

Idempotent (no duplicates when it retries), ``acks=all``, batched with a short linger. At most
``max_in_flight`` records are unacknowledged at once: a source faster than Kafka waits here
instead of growing memory. aiokafka reconnects by itself when a broker restarts; records sent
meanwhile are retried until ``delivery_timeout`` and then counted as failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import orjson

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
        self, settings: Settings, max_in_flight: int = 20_000, delivery_timeout_ms: int = 120_000
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_quotes
        self.slots = asyncio.Semaphore(max_in_flight)
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
            compression_type=None,
            request_timeout_ms=30_000,
        )
        await self._producer.start()

    async def send(self, quote: dict) -> None:
        """Queue one quote (keyed by its symbol); waits while too many are unacknowledged."""
        await self.slots.acquire()
        symbol = quote["symbol"]
        try:
            future = await self._producer.send(self.topic, orjson.dumps(quote), key=symbol.encode())
        except Exception:
            self.slots.release()
            self.summary.failed += 1
            raise
        self._pending.add(future)
        future.add_done_callback(lambda f, s=symbol: self._done(f, s))

    def _done(self, future: asyncio.Future, symbol: str) -> None:
        self._pending.discard(future)
        self.slots.release()
        if future.cancelled() or future.exception() is not None:
            self.summary.failed += 1
            if self.summary.failed == 1:
                log.warning("a quote could not be delivered: %s", future.exception())
        else:
            self.summary.sent[symbol] += 1

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
