"""The state budget, checked before a worker starts (docs/security.md, "Limits").

A symbol's state is one record of the state table's changelog. Kafka refuses a record over the
topic's ``max.message.bytes`` (the broker's ``message.max.bytes`` for a topic not created yet)
or the producer's request limit, and no changelog record may be refused
(docs/operations.md#problems-seen-and-fixed). So a worker starts only if

- the budget (``STOCKAPP_STATE_MAX_BYTES``) fits in what Kafka takes, with room for the
  record's framing; and
- the largest state these settings allow (tables/state_size.py) fits in the budget.

At run time, the processor holds every state to the budget (stockapp/processing.py).
"""

from __future__ import annotations

import asyncio
import logging

from stockapp.credentials import kafka_options
from stockapp.errors import StockappError
from stockapp.faust_compat import RECORD_FRAMING_BYTES
from stockapp.settings import Settings
from stockapp.tables.signals.limits import MAX_LOOKBACK, MAX_TOTAL_LOOKBACK, MAX_USER_RULES
from stockapp.tables.signals.spec import BUILT_IN
from stockapp.tables.state_size import worst_case_bytes
from stockapp.tables.symbol_state import CandleSpec
from stockapp.timeouts import within

# Faust's default producer request limit (``producer_max_request_size``), which stockapp keeps.
PRODUCER_MAX_REQUEST_BYTES = 1_000_000
# The producer's record batches when a topic's limit cannot be read: aiokafka's default.
UNREAD_LIMIT_BATCH_BYTES = 16 * 1024

log = logging.getLogger(__name__)


def changelog_topic(settings: Settings) -> str:
    """The state table's changelog topic, as Faust names it (``<app id>-<table>-changelog``)."""
    return f"{settings.app_id}-symbol-state-changelog"


def state_bytes_at_most(settings: Settings) -> int:
    """The largest encoded state these settings allow."""
    spec = CandleSpec.build(
        settings.intervals,
        settings.market_timezone,
        settings.grace_seconds,
        settings.indicator_set,
    )
    built_in = [dict(rule.params).get("lookback", 0) for rule in BUILT_IN]
    # What users' rules may keep in one symbol's state (stockapp/sinks/rules.py holds them to
    # these limits across workers), beside the built-in rules'.
    return worst_case_bytes(
        spec,
        MAX_USER_RULES + len(BUILT_IN),
        MAX_TOTAL_LOOKBACK + sum(built_in),
        max(MAX_LOOKBACK, *built_in),
    )


def produced_topics(settings: Settings) -> list[str]:
    """Every topic a worker's producer writes: the state changelog first, then the outputs."""
    return [
        changelog_topic(settings),
        settings.topic_candles,
        settings.topic_late,
        settings.topic_dlq,
        settings.topic_signals,
        settings.topic_signals_dlq,
    ]


async def record_limits(settings: Settings, timeout: float = 10.0) -> tuple[int, int]:
    """What Kafka takes, as (the largest record the state table's changelog takes, the
    largest record batch every topic the worker writes takes): each topic's
    max.message.bytes, or the broker's message.max.bytes for a topic not created yet; and
    the producer's limit."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    written = produced_topics(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=",".join(settings.kafka_bootstrap),
        request_timeout_ms=int(timeout * 1000),
        **kafka_options(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        broker = (await admin.describe_cluster())["controller_id"]
        resources = [ConfigResource(ConfigResourceType.BROKER, str(broker))] + [
            ConfigResource(ConfigResourceType.TOPIC, topic)
            for topic in written
            if topic in existing
        ]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    # One response for the broker, one for the topics: read by each resource's type and name.
    default = _config_values(responses, "message.max.bytes").get(
        (ConfigResourceType.BROKER.value, str(broker))
    )
    topics = {
        name: value
        for (kind, name), value in _config_values(responses, "max.message.bytes").items()
        if kind == ConfigResourceType.TOPIC.value
    }

    def limit(topic: str) -> int:
        kafka = topics.get(topic, default)
        return min(kafka, PRODUCER_MAX_REQUEST_BYTES) if kafka else PRODUCER_MAX_REQUEST_BYTES

    batches = min(map(limit, written))
    # A topic whose limit could not be read (an ACL that denies describing it, an error):
    # batches as small as aiokafka's default, which holds one state, as before they grew.
    unread = [t for t in written if t in existing and t not in topics]
    if unread:
        log.warning(
            "could not read max.message.bytes of %s: the producer's record batches stay at %d "
            "bytes",
            ", ".join(unread),
            UNREAD_LIMIT_BATCH_BYTES,
        )
        batches = min(batches, UNREAD_LIMIT_BATCH_BYTES + RECORD_FRAMING_BYTES)
    return limit(changelog_topic(settings)), batches


def _config_values(responses: list, name: str) -> dict[tuple[int, str], int]:
    """``name``'s value for each resource of DescribeConfigs responses, by (resource type,
    resource name) (aiokafka gives the raw protocol structure: resources of (error, message,
    type, name, [(name, value, ...)])); a resource that came back with an error has none."""
    values: dict[tuple[int, str], int] = {}
    for response in responses:
        for resource in response.resources:
            if resource[0] != 0:  # not described: no value
                continue
            for entry in resource[4]:
                if entry[0] == name and entry[1] is not None:
                    values[(resource[2], resource[3])] = int(entry[1])
    return values


def check_state_budget(settings: Settings, limit: int | None) -> None:
    """Raise, in one line, when the budget cannot hold these settings' largest state or Kafka
    cannot take a state of the budget's size. ``limit``: what Kafka takes (None: not known)."""
    budget = settings.state_max_bytes
    if limit is not None and budget + RECORD_FRAMING_BYTES > limit:
        raise StockappError(
            f"STOCKAPP_STATE_MAX_BYTES={budget} does not fit in a record of the state table's "
            f"changelog ({changelog_topic(settings)} takes {limit} bytes): lower it, or raise "
            "the topic's max.message.bytes"
        )
    needed = state_bytes_at_most(settings)
    if needed > budget:
        raise StockappError(
            f"STOCKAPP_STATE_MAX_BYTES={budget} is below the largest state these settings "
            f"allow ({needed} bytes with STOCKAPP_INDICATORS, STOCKAPP_INTERVALS and "
            "STOCKAPP_GRACE_SECONDS as set): raise it, or configure fewer or shorter indicators"
        )


def producer_batch_bytes(settings: Settings, limit: int) -> int:
    """The producer's batch size (``STOCKAPP_KAFKA_PRODUCER_BATCH_BYTES``) within ``limit``,
    what every topic it writes takes: Kafka refuses a record batch larger than the topic's
    max.message.bytes, and a batch holds several records. (A single record larger than the
    batch size goes in a batch of its own, so no state is refused for it.)"""
    return max(min(settings.kafka_producer_batch_bytes, limit - RECORD_FRAMING_BYTES), 1)


def check(settings: Settings) -> int:
    """Both checks against the cluster (``stockapp worker`` runs this before Faust starts);
    returns the producer's batch size, within what every topic the worker writes takes."""
    changelog, batches = asyncio.run(within(30, record_limits(settings)))
    check_state_budget(settings, changelog)
    return producer_batch_bytes(settings, batches)
