"""Protocol-level checks that Kafka and Cassandra answer.

A TCP connect is not enough: a port can be open while the broker is still loading its metadata,
or Cassandra may accept connections before the native protocol is ready. These checks ask for
real answers: a Kafka metadata response and ``SELECT release_version FROM system.local``.
"""

from __future__ import annotations

import asyncio
import logging

from stockapp.errors import ConnectivityError
from stockapp.settings import Settings


async def _kafka_metadata(bootstrap: str, timeout: float) -> int:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def check_kafka(settings: Settings, timeout: float = 5.0) -> int:
    """Return the number of brokers in the cluster, or raise :class:`ConnectivityError`."""
    bootstrap = ",".join(settings.kafka_bootstrap)
    # aiokafka logs every failed attempt at ERROR; the caller reports the outcome once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_kafka_metadata(bootstrap, timeout))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        raise ConnectivityError(
            f"Kafka at {bootstrap} did not answer a metadata request ({type(exc).__name__}). "
            "Start the local stack with `make up`, or set STOCKAPP_KAFKA_BOOTSTRAP."
        ) from None


def check_cassandra(settings: Settings, timeout: float = 5.0) -> str:
    """Return Cassandra's release version, or raise :class:`ConnectivityError`."""
    from stockapp.sinks.cassandra_session import connect

    try:
        cluster, session = connect(settings, keyspace=None, timeout=timeout)
    except ConnectivityError:
        raise
    try:
        row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
        return str(row.release_version)
    finally:
        cluster.shutdown()
