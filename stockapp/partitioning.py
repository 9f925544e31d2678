"""Which partition a key goes to: Kafka's default partitioner (murmur2), as aiokafka and the
Java client compute it. Quotes, their symbol's state and its changelog all follow it."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=65_536)
def symbol_partition(symbol: str, partitions: int) -> int:
    """``partition_for`` of a symbol's key, remembered: the timer asks it for every loaded
    symbol every second, and murmur2 in Python costs microseconds a call."""
    return partition_for(symbol.encode(), partitions)
