"""A Faust app with stockapp's consumer and a real conductor, fed fetches from a list (no
Kafka): for the tests of the fetch loop and of the agent's delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiokafka.structs import TopicPartition
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from stockapp.faust_compat import SafeSeekApp

TOPIC = "fetch-loop-quotes"
TP0 = TP(TOPIC, 0)


def message(offset: int, generation: int = 0) -> ConsumerMessage:
    return ConsumerMessage(
        TOPIC,
        0,
        offset,
        0.0,
        0,
        None,
        b"k",
        str(offset).encode(),
        None,
        tp=TP0,
        generation_id=generation,
    )


class Fetcher:
    """What the loops read of Faust's fetcher service: whether it stops."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()

    @property
    def should_stop(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        self._stopped.set()


class Rig:
    """A Faust app with its consumer (ours), its conductor delivering ``TP0`` into one
    topic's queue, and fetches played from a list; the fetcher stops after the last."""

    def __init__(
        self, fetches: list[list[int]], queue_size: int = 10_000, as_bytes: bool = False
    ) -> None:
        self.generation = 0  # of the records fetched from now on
        self.app = SafeSeekApp(
            "fetch-loop",
            broker="kafka://127.0.0.1:1",
            store="memory://",
            stream_buffer_maxsize=queue_size,
        )
        self.consumer: Any = self.app.consumer  # a RebalanceSafeConsumer
        # as_bytes: typed as the quotes topic is (agents/quotes.py), which the fetch loop queues
        # without the conductor's decoding.
        types = {"key_type": bytes, "value_type": bytes} if as_bytes else {}
        topic = self.app.topic(TOPIC, key_serializer="raw", value_serializer="raw", **types)
        self.topic: Any = topic.clone(is_iterator=True)  # what a stream reads
        conductor: Any = self.app.topics
        conductor._tp_index[TP0].add(self.topic)
        conductor._update_callback_map()
        conductor._acking_topics.add(TOPIC)
        self.app.flow_control.resume()
        self.fetcher = Fetcher()
        self.fetches = [list(fetch) for fetch in fetches]
        self.consumer.getmany = self.getmany  # type: ignore[method-assign]
        self.through_wait_first = 0
        wait_first = self.consumer.wait_first

        async def counted(*coros: Any, **kwargs: Any) -> Any:
            self.through_wait_first += 1
            return await wait_first(*coros, **kwargs)

        self.consumer.wait_first = counted  # type: ignore[method-assign]

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        if not self.fetches:
            self.fetcher.stop()
            await asyncio.sleep(0)
            return
        for offset in self.fetches.pop(0):
            # As Faust's getmany: aiokafka's TopicPartition (equal to Faust's TP, not one).
            yield TopicPartition(TOPIC, 0), message(offset, self.generation)
        if not self.fetches:
            self.fetcher.stop()

    def queued(self) -> list[int]:
        out = []
        queue = self.topic.queue
        while not queue.empty():
            out.append(queue.get_nowait().message.offset)
        return out
