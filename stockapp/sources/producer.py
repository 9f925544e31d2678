"""The Kafka producer every source publishes through.

Idempotent (no duplicates when it retries), ``acks=all``, batched. Quotes are appended straight
into per-partition record batches (partition = Kafka's default partitioner on the symbol), which
costs a fraction of one ``send()`` per record and lets one process publish tens of thousands of
quotes a second. At most ``max_batches_in_flight`` batches are unacknowledged at once: a source
faster than Kafka waits here instead of growing memory.

Broker restarts: the idempotent producer retries by itself, in order and without duplicates, for
up to ``request_timeout_ms``. A batch that still fails (the broker stayed away longer, or
aiokafka's sender died on ``OutOfOrderSequenceNumber`` after such a gap) is kept, the producer is
replaced by a new one, and the failed batches are sent again first. That resend is at least once:
a batch whose request reached the broker before the failure may then be on the topic twice;
the summary counts resent quotes so this is never silent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from stockapp.connectivity import kafka_problem, quiet_refused_connections
from stockapp.credentials import kafka_options, redact
from stockapp.errors import ConnectivityError
from stockapp.models import Quote
from stockapp.partitioning import partition_for
from stockapp.settings import Settings

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_S = 1.0


@dataclass
class SendSummary:
    sent: Counter[str] = field(default_factory=Counter)  # acknowledged, by symbol
    failed: int = 0
    resent: int = 0  # quotes sent again on a new producer after a failure
    stopped_by: str = ""  # why the source stopped, when it refused to go on (a live feed's key)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def line(self) -> str:
        symbols = ", ".join(f"{s} {n}" for s, n in sorted(self.sent.items()))
        resent = f"; {self.resent} resent after a broker failure" if self.resent else ""
        return f"sent {self.total} quotes ({symbols or 'none'}); {self.failed} failed{resent}"


@dataclass
class _Batch:
    """What a record batch holds, kept until Kafka acknowledges it so it can be sent again."""

    seq: int  # shipping order, so a resend keeps each partition's order
    partition: int
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    symbols: Counter[str] = field(default_factory=Counter)

    @property
    def quotes(self) -> int:
        return sum(self.symbols.values())


class QuoteProducer:
    def __init__(
        self,
        settings: Settings,
        max_batches_in_flight: int = 64,
        delivery_timeout_ms: int = 120_000,
        request_timeout_ms: int = 30_000,
        pack: int = 1,
    ) -> None:
        self.settings = settings
        # Quotes of one symbol per record, at most (1: one quote object per record; more: a
        # JSON array of the quotes of a symbol that are sent together, docs/streaming.md).
        self.pack = pack
        self.topic = settings.topic_quotes
        self.partitions = settings.quotes_partitions
        self.max_in_flight = max_batches_in_flight
        self.summary = SendSummary()
        self.delivery_timeout_ms = delivery_timeout_ms
        self.request_timeout_ms = request_timeout_ms
        self._producer: Any = None
        self._pending: dict[asyncio.Future, _Batch] = {}
        self._failed: list[_Batch] = []
        self._seq = 0
        self._run = secrets.token_hex(4)  # this process's quote ids: <run>:<n>
        self._ids = 0

    async def start(self) -> None:
        self._producer = await self._connect(deadline=None)

    async def _connect(self, deadline: float | None) -> Any:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaConnectionError, KafkaError

        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=",".join(self.settings.kafka_bootstrap),
                acks="all",
                enable_idempotence=True,
                linger_ms=10,
                max_batch_size=256 * 1024,
                # How long a batch may wait for a leader or an answer before it fails: a broker
                # restart shorter than this costs nothing, not even a resend.
                request_timeout_ms=self.request_timeout_ms,
                **kafka_options(self.settings),
            )
            try:
                await producer.start()
                return producer
            except KafkaError as exc:
                await producer.stop()
                # The first connection fails fast (a wrong address should say so at once);
                # reconnecting after a failure waits for the broker to come back.
                if deadline is None and isinstance(exc, KafkaConnectionError):
                    problem = await kafka_problem(self.settings)
                    if problem:
                        quiet_refused_connections()  # the command ends with this line
                        raise ConnectivityError(redact(problem, self.settings)) from None
                if deadline is None or time.monotonic() > deadline:
                    raise
                log.warning("Kafka is not reachable yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RECONNECT_BACKOFF_S)

    async def send_many(self, quotes: list[Quote]) -> None:
        """Queue quotes (keyed by symbol, order kept per symbol); waits while too many batches
        are unacknowledged."""
        if self._failed:
            await self._recover()
        batches: dict[int, tuple[Any, _Batch]] = {}
        for symbol, group in self._records(quotes):
            key = symbol.encode()
            partition = partition_for(key, self.partitions)
            entry = batches.get(partition)
            if entry is None:
                entry = batches[partition] = self._new_batch(partition)
            if len(group) == 1:  # alone, a quote goes as an object, packing or not
                value = orjson.dumps(group[0].to_json())
            else:
                value = orjson.dumps([quote.to_json() for quote in group])
            if entry[0].append(key=key, value=value, timestamp=None) is None:  # batch full
                await self._ship(*entry)
                entry = batches[partition] = self._new_batch(partition)
                entry[0].append(key=key, value=value, timestamp=None)
            entry[1].records.append((key, value))
            entry[1].symbols[symbol] += len(group)
        for entry in batches.values():
            await self._ship(*entry)

    def _records(self, quotes: list[Quote]) -> list[tuple[str, list[Quote]]]:
        """The records for ``quotes``: one per quote, or (packing) each symbol's quotes in
        their order, ``pack`` at most per record. Ids are given here: a resend carries the
        same bytes, so the same ids, and the worker drops the repeats."""
        for quote in quotes:
            if quote.id is None:
                self._ids += 1
                quote.id = (
                    f"bar:{quote.ts}:{quote.bar_seconds}"
                    if quote.is_bar
                    else f"{self._run}:{self._ids}"
                )
        if self.pack == 1:
            return [(quote.symbol, [quote]) for quote in quotes]
        records: list[tuple[str, list[Quote]]] = []
        open_records: dict[str, list[Quote]] = {}
        for quote in quotes:
            group = open_records.get(quote.symbol)
            if group is None or len(group) == self.pack:
                group = open_records[quote.symbol] = []
                records.append((quote.symbol, group))
            group.append(quote)
        return records

    def _new_batch(self, partition: int) -> tuple[Any, _Batch]:
        self._seq += 1
        return self._producer.create_batch(), _Batch(self._seq, partition)

    async def _ship(self, builder: Any, batch: _Batch) -> None:
        from aiokafka.errors import KafkaError, KafkaTimeoutError

        while len(self._pending) >= self.max_in_flight:
            await asyncio.wait(list(self._pending), return_when=asyncio.FIRST_COMPLETED)
        builder.close()
        while True:
            try:
                future = await self._producer.send_batch(
                    builder, self.topic, partition=batch.partition
                )
                break
            except KafkaTimeoutError:
                # The broker is unreachable (restarting?): keep the batch and try again, so
                # the source waits for Kafka instead of dropping quotes or dying.
                log.warning(
                    "Kafka did not take a batch for partition %d; retrying", batch.partition
                )
            except KafkaError as exc:
                # The producer itself is broken (its sender died): resend on a new one.
                log.warning("the Kafka producer failed (%s); replacing it", type(exc).__name__)
                self._failed.append(batch)
                return
        self._pending[future] = batch
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future) -> None:
        batch = self._pending.pop(future, None)
        if batch is None:
            return  # given up on by close(), and counted there
        if future.cancelled() or future.exception() is not None:
            log.warning(
                "a batch of %d quotes was not acknowledged (%s); it will be sent again",
                batch.quotes,
                "cancelled" if future.cancelled() else type(future.exception()).__name__,
            )
            self._failed.append(batch)
        else:
            self.summary.sent.update(batch.symbols)

    async def _recover(self, deadline: float | None = None) -> None:
        """Replace the producer and send the failed batches again, oldest first."""
        if deadline is None:
            deadline = time.monotonic() + self.delivery_timeout_ms / 1000
        # Every batch of the old producer either lands or fails before it is replaced, so
        # nothing is resent that might still be acknowledged.
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=max(0.1, deadline - time.monotonic()))
        await self._producer.stop()
        self._producer = await self._connect(deadline)
        failed, self._failed = sorted(self._failed, key=lambda b: b.seq), []
        for old in failed:
            builder, batch = self._new_batch(old.partition)
            for key, value in old.records:
                builder.append(key=key, value=value, timestamp=None)
            batch.records, batch.symbols = old.records, old.symbols
            self.summary.resent += old.quotes
            await self._ship(builder, batch)

    async def close(self) -> SendSummary:
        """Flush what is queued, wait for the acknowledgements (resending failed batches on a new
        producer while time is left), stop."""
        from aiokafka.errors import KafkaError

        if self._producer is None:
            return self.summary
        deadline = time.monotonic() + self.delivery_timeout_ms / 1000
        try:
            while True:
                await self._producer.flush()
                if self._pending:
                    await asyncio.wait(
                        list(self._pending), timeout=max(0.0, deadline - time.monotonic())
                    )
                if not self._failed or self._pending or time.monotonic() > deadline:
                    break
                try:
                    await self._recover(deadline)
                except KafkaError:
                    break  # Kafka stayed away: what is left counts as failed
        finally:
            lost = self._failed + list(self._pending.values())
            self.summary.failed += sum(b.quotes for b in lost)
            self._failed, self._pending = [], {}
            await self._producer.stop()
            self._producer = None
        return self.summary

    async def __aenter__(self) -> QuoteProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
