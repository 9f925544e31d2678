"""POSTing signals to a webhook (STOCKAPP_SIGNAL_WEBHOOK_URL), at least once, in order per
partition of the signals topic, with retries and a dead-letter topic (docs/signals.md).

A consumer group of its own reads the signals topic, so deliveries neither hold up nor are
held up by the quotes stream, and its offsets move only past signals delivered or
dead-lettered: a crash re-sends, never skips. Each POST carries ``Idempotency-Key: <the
signal's key>`` for the receiver to drop a repeat (a replay of the stream repeats keys too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from stockapp.credentials import kafka_options
from stockapp.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# A receiver's answer that will not change by asking again: dead-lettered at once. Others
# (5xx, 408, 429, no answer) are tried again.
PERMANENT = frozenset(range(400, 500)) - {408, 425, 429}


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    reason: str  # the last failure (empty when delivered)


# (url, body, headers, timeout) -> HTTP status; raises on no answer
Post = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]


async def deliver(
    post: Post,
    url: str,
    key: str,
    body: bytes,
    tries: int,
    timeout: float,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "User-Agent": "stockapp-signals",
    }
    reason = ""
    delay = FIRST_BACKOFF_S
    for attempt in range(1, tries + 1):
        try:
            status = await post(url, body, headers, timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"no answer: {type(exc).__name__}"
        else:
            if 200 <= status < 300:
                return Outcome(True, attempt, "")
            reason = f"HTTP {status}"
            if status in PERMANENT:
                return Outcome(False, attempt, reason)
        if attempt < tries:
            await sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
    return Outcome(False, tries, reason)


class Notifier:
    """Reads the signals topic (group ``<app id>-webhook``) and POSTs each record's value."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.delivered = 0
        self.dead_lettered = 0
        self.retries = 0

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        s = self.settings
        options = kafka_options(s)
        consumer = AIOKafkaConsumer(
            s.topic_signals,
            bootstrap_servers=list(s.kafka_bootstrap),
            group_id=f"{s.app_id}-webhook",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **options,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=list(s.kafka_bootstrap), acks="all", **options
        )
        timeout = aiohttp.ClientTimeout(total=s.signal_webhook_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def post(url: str, body: bytes, headers: dict[str, str], limit: float) -> int:
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            await producer.start()
            try:
                await consumer.start()
                try:
                    await self._loop(consumer, producer, post)
                finally:
                    await consumer.stop()
            finally:
                await producer.stop()

    async def _loop(self, consumer: Any, producer: Any, post: Post) -> None:
        from aiokafka.structs import OffsetAndMetadata

        s = self.settings
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            for tp, records in batches.items():
                for record in records:
                    key = (record.key or b"").decode("utf-8", "replace")
                    outcome = await deliver(
                        post,
                        s.signal_webhook_url,
                        key,
                        record.value or b"",
                        s.signal_webhook_tries,
                        s.signal_webhook_timeout_seconds,
                    )
                    self.retries += outcome.attempts - 1
                    if outcome.delivered:
                        self.delivered += 1
                    else:
                        self.dead_lettered += 1
                        log.warning(
                            "signal %s went to %s after %d tries: %s",
                            key,
                            s.topic_signals_dlq,
                            outcome.attempts,
                            outcome.reason,
                        )
                        await producer.send_and_wait(
                            s.topic_signals_dlq,
                            value=record.value,
                            key=record.key,
                            headers=[
                                ("stockapp.reason", f"webhook: {outcome.reason}".encode()),
                                ("stockapp.attempts", str(outcome.attempts).encode()),
                                ("stockapp.source.topic", s.topic_signals.encode()),
                                ("stockapp.source.partition", str(tp.partition).encode()),
                                ("stockapp.source.offset", str(record.offset).encode()),
                            ],
                        )
                    # Past this record only once it is delivered or dead-lettered.
                    await consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})
