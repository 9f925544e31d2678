"""Creating the pipeline's topics before anything uses them, and checking their layout."""

from __future__ import annotations

import asyncio

from stockapp.connectivity import check_kafka
from stockapp.credentials import kafka_options
from stockapp.errors import StockappError
from stockapp.settings import Settings
from stockapp.timeouts import within


async def _ensure(settings: Settings, timeout: float) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    names = [
        settings.topic_quotes,
        settings.topic_candles,
        settings.topic_late,
        settings.topic_dlq,
        settings.topic_signals,
        settings.topic_signals_dlq,
    ]
    # Signals are keyed by their identity (a replay after a crash repeats keys): compaction
    # keeps one record per key for consumers that read from the start; deletion bounds it.
    configs = {settings.topic_signals: {"cleanup.policy": "compact,delete"}}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=",".join(settings.kafka_bootstrap),
        request_timeout_ms=int(timeout * 1000),
        **kafka_options(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            num_partitions=settings.quotes_partitions,
                            replication_factor=settings.topic_replication,
                            topic_configs=configs.get(n, {}),
                        )
                        for n in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another worker or producer won the race
        partitions = 0
        for _ in range(50):  # a topic created a moment ago may show no partitions yet
            described = await admin.describe_topics([settings.topic_quotes])
            partitions = len(described[0]["partitions"])
            if partitions:
                break
            await asyncio.sleep(0.1)
        if partitions != settings.quotes_partitions:
            raise StockappError(
                f"topic {settings.topic_quotes} has {partitions} partitions but "
                f"STOCKAPP_QUOTES_PARTITIONS={settings.quotes_partitions}: set it to "
                f"{partitions} (symbol state is partitioned like the quotes)"
            )
        return missing
    finally:
        await admin.close()


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics (quotes, candles, late, dead letters, signals and their dead
    letters); returns those created."""
    from aiokafka.errors import KafkaConnectionError

    try:
        return asyncio.run(within(timeout, _ensure(settings, timeout)))
    except KafkaConnectionError:
        check_kafka(settings)  # raises the reason in one line
        raise
