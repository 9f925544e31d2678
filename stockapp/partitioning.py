"""Which partition a key goes to: Kafka's default partitioner (murmur2), as aiokafka and the
Java client compute it. Quotes, their symbol's state and its changelog all follow it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
