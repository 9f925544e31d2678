"""Fakes shared by unit tests: the processor's effects (Cassandra writes, Kafka publishes)
and its table, recording the order in which they happen."""

from __future__ import annotations

import asyncio

import orjson


class Effects:
    """Records writes, publishes and table puts in the order they happen."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.quotes: list = []
        self.candles: list = []
        self.published: list = []
        self.signals: list = []
        self.deliveries: list = []  # futures handed out by the next publishes

    async def write(self, quotes, candles, signals=()) -> int:
        quotes, candles = list(quotes), list(candles)
        self.quotes += quotes
        self.candles += candles
        self.signals += list(signals)
        self.log.append(("write", len(quotes), len(candles)))
        return 1

    async def publish(self, topic, key, value, headers):
        """Queued and delivered at once, unless ``deliveries`` holds a future to return."""
        self.published.append((topic, key, value, dict(headers)))
        self.log.append(("publish", topic))
        if self.deliveries:
            return self.deliveries.pop(0)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Table(dict):
    """The symbol-state table: symbol bytes -> the state as JSON bytes."""

    def __init__(self, effects: Effects) -> None:
        super().__init__()
        self.effects = effects

    def state(self, key: bytes) -> dict:
        """The stored state, decoded."""
        return orjson.loads(self[key])

    def __setitem__(self, key, value) -> None:
        self.effects.log.append(("table", key))
        super().__setitem__(key, value)


class Port:
    """A stream port (stockapp/stream_port.py) whose answers a test sets: each one given as a
    callable stands in for that part of the stream; the rest answer as a detached stream."""

    def __init__(
        self,
        backlog=None,
        seeds=None,
        owned=None,
        topic_id=None,
        generation=None,
        durable=None,
    ) -> None:
        self.backlog_fn, self.seeds_fn, self.owned_fn = backlog, seeds, owned
        self.topic_id_fn, self.generation_fn = topic_id, generation
        self.durable = durable

    @property
    def knows_backlog(self) -> bool:
        return self.backlog_fn is not None

    async def backlog(self, processed):
        return await self.backlog_fn(processed)

    async def seeds(self, symbols):
        return await self.seeds_fn(symbols) if self.seeds_fn is not None else {}

    def owned(self):
        return self.owned_fn() if self.owned_fn is not None else None

    async def topic_id(self):
        return await self.topic_id_fn() if self.topic_id_fn is not None else None

    def generation(self):
        return self.generation_fn() if self.generation_fn is not None else None
