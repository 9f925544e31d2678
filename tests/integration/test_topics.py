"""`stockapp worker` creates the pipeline's topics and refuses a quotes topic it can't use."""

import asyncio

import pytest

from stockapp.errors import StockappError
from stockapp.settings import load_settings
from stockapp.topics import ensure_topics


def test_creates_missing_topics_once(stack, unique):
    # Every topic named afresh: one left at its default (the signals topics were) exists or
    # not depending on which tests ran before on the stack, and on a new stack this one failed.
    names = {"quotes": "q", "candles": "c", "late": "l", "dlq": "d", "signals": "s"}
    names["signals_dlq"] = "sd"
    topics = {f"topic_{name}": f"t.{unique}.{short}" for name, short in names.items()}
    settings = load_settings().model_copy(update=topics)
    assert sorted(ensure_topics(settings)) == sorted(topics.values())
    assert ensure_topics(settings) == []


def test_partition_count_mismatch_is_refused(stack, unique):
    settings = load_settings().model_copy(
        update=dict(topic_quotes=f"t.{unique}.q4", quotes_partitions=4)
    )
    ensure_topics(settings)
    with pytest.raises(StockappError, match="has 4 partitions but STOCKAPP_QUOTES_PARTITIONS=8"):
        ensure_topics(settings.model_copy(update=dict(quotes_partitions=8)))


async def _create(settings, configs: dict[str, str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap[0])
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, 1, 1, topic_configs={"max.message.bytes": v}) for t, v in configs.items()]
        )
        # Created is not yet listed everywhere: wait until the broker lists them.
        deadline = asyncio.get_running_loop().time() + 30
        while not set(configs) <= set(await admin.list_topics()):
            assert asyncio.get_running_loop().time() < deadline, "topics not listed in 30 s"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def test_what_kafka_takes_bounds_the_state_budget_and_the_producer_s_batches(stack, unique):
    """Read from the broker: the changelog's max.message.bytes bounds a state; the smallest of
    every topic the worker writes bounds a record batch, which holds several records (a batch
    over a topic's limit is refused whole: MessageSizeTooLargeError)."""
    from stockapp.faust_compat import RECORD_FRAMING_BYTES
    from stockapp.state_budget import changelog_topic, check, record_limits

    settings = load_settings().model_copy(
        update={
            "app_id": f"limits-{unique}",
            **{name: f"t.{unique}.{name}" for name in ("topic_candles", "topic_late", "topic_dlq")},
            "topic_signals": f"t.{unique}.s",
            "topic_signals_dlq": f"t.{unique}.sd",
        }
    )
    # Not created yet: the broker's message.max.bytes (1 MB), above the producer's limit.
    assert await record_limits(settings) == (1_000_000, 1_000_000)
    await _create(settings, {changelog_topic(settings): "400000", settings.topic_late: "300000"})
    assert await record_limits(settings) == (400_000, 300_000)
    assert await asyncio.to_thread(check, settings) == 300_000 - RECORD_FRAMING_BYTES
