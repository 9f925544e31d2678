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


async def record_limit(settings: Settings, timeout: float = 10.0) -> int:
    """The largest record the state table's changelog takes: its topic's max.message.bytes,
    or the broker's message.max.bytes before the topic exists; and the producer's limit."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(
        bootstrap_servers=",".join(settings.kafka_bootstrap),
        request_timeout_ms=int(timeout * 1000),
        **kafka_options(settings),
    )
    await admin.start()
    try:
        topic = changelog_topic(settings)
        if topic in set(await admin.list_topics()):
            resource = ConfigResource(ConfigResourceType.TOPIC, topic)
            name = "max.message.bytes"
        else:
            broker = (await admin.describe_cluster())["controller_id"]
            resource = ConfigResource(ConfigResourceType.BROKER, str(broker))
            name = "message.max.bytes"
        (response,) = await admin.describe_configs([resource])
        kafka = _config_value(response, name)
    finally:
        await admin.close()
    return min(kafka, PRODUCER_MAX_REQUEST_BYTES) if kafka else PRODUCER_MAX_REQUEST_BYTES


def _config_value(response: object, name: str) -> int | None:
    """``name``'s value in a DescribeConfigs response (aiokafka gives the raw protocol
    structure: resources of (error, ..., [(name, value, ...)]))."""
    for resource in response.resources:  # type: ignore[attr-defined]
        for entry in resource[4]:
            if entry[0] == name and entry[1] is not None:
                return int(entry[1])
    return None


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


def check(settings: Settings) -> None:
    """Both checks against the cluster (``stockapp worker`` runs this before Faust starts)."""
    limit = asyncio.run(within(30, record_limit(settings)))
    check_state_budget(settings, limit)
