"""The benchmark's stream: a fixed, seeded sequence of quotes, preloaded into a fresh topic.

Every contender reads the same records from the beginning. Event time moves forward by about
2 ms per quote; a tenth of the quotes arrive up to 2 s late (inside the default 5 s grace), so
every contender meets some disorder and stockapp judges none of it late.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 8
# 2026-01-05 15:00 UTC, 10:00 New York: in the past, so event time alone closes candles, and
# in the NYSE's regular session, so on the default calendar every quote counts (the 200 s of
# the stream end at 10:03:20).
T0 = 1_767_625_200_000


def quotes(count: int, symbols: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """``count`` (key, value) records over ``symbols`` symbols, the same for the same seed."""
    rng = random.Random(seed)
    names = [f"B{i:04d}" for i in range(symbols)]
    prices = [50.0 + rng.random() * 150 for _ in names]
    for n in range(count):
        i = rng.randrange(symbols)
        prices[i] = round(max(1.0, prices[i] * (1 + rng.gauss(0, 0.001))), 4)
        ts = T0 + 2 * n - (rng.randrange(2000) if rng.random() < 0.1 else 0)
        body = {"symbol": names[i], "ts": ts, "price": prices[i], "volume": rng.randrange(1, 500)}
        yield names[i].encode(), orjson.dumps(body)


def packed(records: Iterator[tuple[bytes, bytes]], window: int, size: int) -> Iterator[tuple]:
    """The same quotes as ``stockapp produce --pack`` sends a stream that is already due: in
    windows of ``window`` quotes (its chunk), each symbol's quotes of a window in records of at
    most ``size`` (a JSON array; a lone quote stays an object)."""
    chunk: list[tuple[bytes, bytes]] = []

    def flush() -> Iterator[tuple[bytes, bytes]]:
        groups: dict[bytes, list[list[bytes]]] = {}
        order: list[tuple[bytes, list[bytes]]] = []
        for key, value in chunk:
            runs = groups.setdefault(key, [])
            if not runs or len(runs[-1]) == size:
                runs.append([])
                order.append((key, runs[-1]))
            runs[-1].append(value)
        for key, values in order:
            yield key, values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"

    for record in records:
        chunk.append(record)
        if len(chunk) == window:
            yield from flush()
            chunk = []
    yield from flush()


async def preload(
    bootstrap: str, topic: str, count: int, symbols: int, pack: int = 1, window: int = 5000
) -> int:
    """Creates ``topic`` and writes the stream into it (``pack`` > 1: packed, see
    :func:`packed`); returns the number of records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        stream = quotes(count, symbols)
        for key, value in packed(stream, window, pack) if pack > 1 else stream:
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= 20_000:
                for future in pending:
                    await future
                pending.clear()
        for future in pending:
            await future
    finally:
        await producer.stop()
    return sent


async def delete_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
