"""POSTing signals to a webhook (STOCKAPP_SIGNAL_WEBHOOK_URL), at least once, in order per
partition of the signals topic, with retries and a dead-letter topic (docs/signals.md).

A consumer group of its own reads the signals topic, so deliveries neither hold up nor are
held up by the quotes stream, and its offsets move only past signals delivered or
dead-lettered: a crash re-sends, never skips. Each POST carries ``Idempotency-Key: <the
signal's key>`` for the receiver to drop a repeat (a replay of the stream repeats keys too),
and a signature (stockapp/sinks/webhook_signing.py) for it to know the POST is ours.

The receiver is not trusted either: redirects are not followed (a 307 would send the signed
body wherever it points) and at most 64 KiB of an answer is read. Nor is the topic: a record
that cannot be POSTed (a key that is no header value, a value that is not JSON) or whose POST
cannot be built goes to the dead-letter topic with the reason, and the next one is taken.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from stockapp.credentials import kafka_options
from stockapp.settings import Settings
from stockapp.sinks.webhook_signing import SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# A receiver's answer that will not change by asking again: dead-lettered at once. Others
# (5xx, 408, 425, 429, no answer) are tried again. A redirect is one: it is not followed.
REDIRECTS = frozenset(range(300, 400))
PERMANENT = REDIRECTS | (frozenset(range(400, 500)) - {408, 425, 429})
# Nobody looks at an answer's body; a small one is read so that the connection can carry the
# next POST, a larger one's connection is closed instead of read.
MAX_RESPONSE_BYTES = 64 * 1024
# A signal's key becomes the Idempotency-Key header as it is: printable ASCII, no spaces (ours
# are SYMBOL|interval|rule|start). CR/LF in a header made aiohttp raise on every try.
_KEY = re.compile(rb"[\x21-\x7e]{1,512}")


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
    *,
    secret: str,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    reason = ""
    delay = FIRST_BACKOFF_S
    for attempt in range(1, tries + 1):
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": "stockapp-signals",
            # Signed at each try: a receiver refusing old timestamps still takes a late retry.
            SIGNATURE_HEADER: signature(secret, body, int(clock())),
        }
        try:
            status = await post(url, body, headers, timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"no answer: {type(exc).__name__}"
        except Exception as exc:  # noqa: BLE001 - the request could not be built: asking again won't
            return Outcome(False, attempt, f"could not send: {type(exc).__name__}")
        else:
            if 200 <= status < 300:
                return Outcome(True, attempt, "")
            reason = f"HTTP {status}"
            if status in REDIRECTS:
                reason += " (redirects are not followed)"
            if status in PERMANENT:
                return Outcome(False, attempt, reason)
        if attempt < tries:
            await sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
    return Outcome(False, tries, reason)


def http_post(http: aiohttp.ClientSession) -> Post:
    """A :data:`Post` through ``http`` that follows no redirect and reads at most
    :data:`MAX_RESPONSE_BYTES` of the answer."""

    async def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        async with http.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            left = MAX_RESPONSE_BYTES
            while left > 0:
                chunk = await response.content.read(left)
                if not chunk:
                    break
                left -= len(chunk)
            if not response.content.at_eof():
                response.close()  # the rest is not read: the connection goes with it
            return response.status

    return post


def unusable(key: bytes | None, value: bytes | None) -> str:
    """Why a record of the signals topic cannot be POSTed; empty if it can."""
    if key is None or not _KEY.fullmatch(key):
        return "key is not 1-512 printable ASCII characters without spaces"
    if value is None:
        return "no value"
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return "value is not JSON"
    return ""


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
        # No decompression: a small compressed answer cannot become a large one in memory.
        async with aiohttp.ClientSession(
            auto_decompress=False, headers={"Accept-Encoding": "identity"}
        ) as http:
            await producer.start()
            try:
                await consumer.start()
                try:
                    await self._loop(consumer, producer, http_post(http))
                finally:
                    await consumer.stop()
            finally:
                await producer.stop()

    async def _loop(self, consumer: Any, producer: Any, post: Post) -> None:
        from aiokafka.structs import OffsetAndMetadata

        s = self.settings
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            # Read for each batch: a rotated secret file is used within a second.
            secret = s.signal_webhook_signing_key
            for tp, records in batches.items():
                for record in records:
                    problem = unusable(record.key, record.value)
                    if problem:
                        outcome = Outcome(False, 0, f"unusable record: {problem}")
                    else:
                        outcome = await deliver(
                            post,
                            s.signal_webhook_url,
                            record.key.decode(),
                            record.value,
                            s.signal_webhook_tries,
                            s.signal_webhook_timeout_seconds,
                            secret=secret,
                        )
                        if not outcome.delivered:
                            outcome.reason = f"webhook: {outcome.reason}"
                    self.retries += max(outcome.attempts - 1, 0)
                    if outcome.delivered:
                        self.delivered += 1
                    else:
                        await self._dead_letter(producer, tp.partition, record, outcome)
                    # Past this record only once it is delivered or dead-lettered.
                    await consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})

    async def _dead_letter(
        self, producer: Any, partition: int, record: Any, outcome: Outcome
    ) -> None:
        from aiokafka.errors import MessageSizeTooLargeError

        s = self.settings
        self.dead_lettered += 1
        key = (record.key or b"")[:100].decode("utf-8", "replace")
        log.warning(
            "signal %r (%s[%d]@%d) went to %s after %d tries: %s",  # %r: a key may hold CR/LF
            key,
            s.topic_signals,
            partition,
            record.offset,
            s.topic_signals_dlq,
            outcome.attempts,
            outcome.reason,
        )
        headers = [
            ("stockapp.reason", outcome.reason.encode()),
            ("stockapp.attempts", str(outcome.attempts).encode()),
            ("stockapp.source.topic", s.topic_signals.encode()),
            ("stockapp.source.partition", str(partition).encode()),
            ("stockapp.source.offset", str(record.offset).encode()),
        ]
        try:
            await producer.send_and_wait(
                s.topic_signals_dlq, value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # The record and our headers are over the producer's limit, and would be at every
            # restart: the dead letter goes without them (its source offset says where it is).
            headers[0] = ("stockapp.reason", f"{outcome.reason}; too large to copy".encode())
            await producer.send_and_wait(s.topic_signals_dlq, value=None, key=None, headers=headers)
