"""Sending late records and dead letters to their topics, in the Kafka Connect convention:
the original key and bytes, with why and where they came from in headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from stockapp.records import SideOutput
from stockapp.stats import Stats

log = logging.getLogger(__name__)

# Side outputs keep the record's bytes, cut to this size: a record within the broker's limit
# can be over the producer's request limit (1 MB by default).
FORWARD_MAX_BYTES = 256 * 1024


class Publisher(Protocol):
    """Queues a record (waiting only while the producer's buffer is full) and returns its
    delivery, which resolves once the broker has acknowledged it."""

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[Any]: ...


Headers = list[tuple[str, bytes]]


def headers_of(output: SideOutput, source_topic: str) -> Headers:
    record = output.record
    headers = [
        ("stockapp.reason", output.reason.encode()),
        ("stockapp.source.topic", source_topic.encode()),
        ("stockapp.source.partition", str(record.partition).encode()),
        ("stockapp.source.offset", str(record.offset).encode()),
    ]
    if output.element is not None:
        headers.append(("stockapp.source.index", str(output.element[0]).encode()))
    return headers


class SideOutputs:
    """Queues side outputs on a publisher; counts those sent without their bytes."""

    def __init__(self, source_topic: str, stats: Stats) -> None:
        self.source_topic = source_topic
        self.stats = stats

    async def send(self, output: SideOutput, publish: Publisher) -> Awaitable[Any]:
        """Queues the output and returns its delivery. For one element of a packed record,
        that element's JSON is forwarded, with its index in a header."""
        headers = headers_of(output, self.source_topic)
        key, value = output.record.key, output.record.value
        if output.element is not None:
            value = output.element[1]
        for name, data in (("key", key), ("value", value)):
            if data is not None and len(data) > FORWARD_MAX_BYTES:
                # The original stays in the source topic at the offset named above.
                headers.append((f"stockapp.truncated.{name}", str(len(data)).encode()))
        if key is not None and len(key) > FORWARD_MAX_BYTES:
            key = key[:FORWARD_MAX_BYTES]
        if value is not None and len(value) > FORWARD_MAX_BYTES:
            value = value[:FORWARD_MAX_BYTES]
        try:
            delivery = await publish(output.topic, key, value, headers)
        except Exception as exc:
            if not too_large(exc):
                raise
            return await self._without_bytes(publish, output.topic, headers)
        return asyncio.ensure_future(self._delivered(publish, delivery, output.topic, headers))

    async def _delivered(
        self, publish: Publisher, delivery: Awaitable[Any], topic: str, headers: Headers
    ) -> Any:
        """A side output's delivery; if the broker refused it as too large (a topic whose
        max.message.bytes is below what is forwarded), the same without its bytes."""
        try:
            return await delivery
        except Exception as exc:
            if not too_large(exc):
                raise
            return await (await self._without_bytes(publish, topic, headers))

    async def _without_bytes(
        self, publish: Publisher, topic: str, headers: Headers
    ) -> Awaitable[Any]:
        """A side output Kafka will not take, sent as its headers alone: retried, it would
        fail again at every try and stop the partition. The source offset says where the
        record is."""
        self.stats.side_outputs_without_bytes += 1
        log.warning("a record for %s is too large for it: sent without key and value", topic)
        headers = [*headers, ("stockapp.dropped", b"key and value: too large for the topic")]
        return await publish(topic, None, None, headers)


def too_large(exc: BaseException | None) -> bool:
    """A send refused for its size, by the producer or the broker (directly, or wrapped in
    Faust's ProducerSendError)."""
    from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

    while exc is not None:
        if isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError):
            return True
        exc = exc.__cause__
    return False
