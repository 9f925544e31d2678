"""Produce to a real Kafka topic and read the records back."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.helpers import create_topic


async def test_produce_and_consume_roundtrip(stack, unique):
    bootstrap = ",".join(stack.kafka_bootstrap)
    topic = f"test.roundtrip.{unique}"
    await create_topic(bootstrap, topic, 4)

    sent = [(f"SYM{i % 7}".encode(), f'{{"n": {i}}}'.encode()) for i in range(200)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in sent:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    received = []
    try:

        async def drain() -> None:
            while len(received) < len(sent):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    received.extend(records)

        await asyncio.wait_for(drain(), timeout=30)
    finally:
        await consumer.stop()

    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    # Same key, same partition, in the order sent: the guarantee the pipeline relies on.
    partitions_by_key: dict[bytes, set[int]] = {}
    for record in received:
        partitions_by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(parts) == 1 for parts in partitions_by_key.values())
    for key in partitions_by_key:
        values = [r.value for r in sorted(received, key=lambda r: r.offset) if r.key == key]
        assert values == [v for k, v in sent if k == key]
