"""A Kafka topic's id: what tells a recreated topic from the one a state was built on.

Offsets restart at 0 when a topic is deleted and created again under the same name, and the
symbol states' replay guard (``last_offset``) would then skip every record below it. Kafka
gives each topic a UUID at creation (KIP-516); aiokafka 0.14 does not ask for it, so this
module sends the one request that returns it: Metadata v10 (a flexible version), for one topic.
"""

from __future__ import annotations

import logging
import uuid
from io import BytesIO

from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from stockapp.credentials import kafka_options
from stockapp.settings import Settings

log = logging.getLogger(__name__)


class _Uuid(AbstractType[bytes]):
    @classmethod
    def encode(cls, value: bytes) -> bytes:
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        value = data.read(16)
        if len(value) != 16:
            raise ValueError("Buffer underrun decoding a UUID")
        return value


class MetadataResponse_v10(Response):
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class MetadataRequest_v10(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = MetadataResponse_v10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid),
                ("name", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdRequest(Request[MetadataRequest_v10]):
    """Asks for one topic's metadata at v10 (brokers from Kafka 2.8 on answer it)."""

    API_KEY = 3

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def build(self, request_struct_class: type[MetadataRequest_v10]) -> MetadataRequest_v10:
        return request_struct_class([(bytes(16), self.topic, {})], False, False, False, {})


async def topic_id(settings: Settings, topic: str) -> str | None:
    """The topic's UUID (as text), or None if the topic does not exist."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=list(settings.kafka_bootstrap), **kafka_options(settings)
    )
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), _TopicIdRequest(topic))
    except (NotImplementedError, IncompatibleBrokerVersion):
        log.warning(
            "the broker does not give topic ids (Kafka < 2.8): a recreated %s cannot be told apart",
            topic,
        )
        return None
    finally:
        await client.close()
    for error_code, name, raw_id, *_ in response.topics:
        if name == topic and error_code == 0:
            return str(uuid.UUID(bytes=raw_id))
    return None
