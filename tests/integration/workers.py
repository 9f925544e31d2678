"""A worker process and a record producer for integration tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from stockapp.devstack.worker import WorkerProcess
from tests.helpers import create_topic, free_port, topic_env


def with_indicators(settings: Any, indicators: str) -> Any:
    """``settings`` with STOCKAPP_INDICATORS=``indicators`` (for `db migrate` and the outputs a
    worker given that value writes)."""
    return settings.model_copy(update={"indicators": tuple(indicators.split(","))})


def drop_keyspace(settings: Any, keyspace: str) -> None:
    """A test's keyspace, gone (in its teardown)."""
    from stockapp.sinks.cassandra_session import connect

    cluster, session = connect(settings, keyspace=None)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def worker_env(prefix: str, unique: str, keyspace: str, data_dir: Path, **extra: str) -> dict:
    """Settings that give a test worker its own app id, topics, keyspace, port and state dir."""
    return {
        "STOCKAPP_APP_ID": f"stockapp-{prefix}-{unique}",
        **topic_env(f"{prefix}.{unique}.quotes"),
        "STOCKAPP_CASSANDRA_KEYSPACE": keyspace,
        "STOCKAPP_WEB_PORT": str(free_port()),
        "STOCKAPP_DATA_DIR": str(data_dir),
        # A SIGKILLed worker's partitions move once its session times out: 10 s rather than
        # the default 60 s keeps the crash and rebalance tests short (docs/operations.md has
        # the takeover times for both).
        "STOCKAPP_KAFKA_SESSION_TIMEOUT_SECONDS": "10",
        # Synthetic clocks (tests/conftest.py); said here too for the containers, which do not
        # inherit this process's environment.
        "STOCKAPP_EXCHANGE": "ALWAYS_OPEN",
        **extra,
    }


async def produce(bootstrap: str, topic: str, records: list) -> dict[bytes, set[int]]:
    """Returns the partition each key's records went to."""
    await create_topic(bootstrap, topic, 8)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in records]
        await producer.flush()
        sent = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    partitions: dict[bytes, set[int]] = {}
    for (key, _), meta in zip(records, sent, strict=True):
        partitions.setdefault(key, set()).add(meta.partition)
    return partitions


# Tests call it Worker.
Worker = WorkerProcess


def wait_for(
    predicate,
    timeout: float,
    what: str,
    worker: Worker,
    missing=None,
    others=(),
    progress=None,
    stalled_after: float = 120,
) -> None:
    """Polls ``predicate`` once a second; on timeout says what ``worker`` (and each of
    ``others``, the other workers of a multi-worker test) had done. With ``progress`` (a
    count that grows while the work goes on), gives up as soon as it has not moved for
    ``stalled_after`` seconds, rather than at ``timeout``."""
    deadline = time.monotonic() + timeout
    last, moved = None, time.monotonic()
    while not predicate():
        if worker.proc and worker.proc.poll() is not None:
            raise AssertionError(f"worker exited: {worker.log.read_text()[-3000:]}")
        if progress is not None:
            now_at = progress()
            if now_at != last:
                last, moved = now_at, time.monotonic()
        stalled = progress is not None and time.monotonic() - moved > stalled_after
        if stalled or time.monotonic() > deadline:
            what = f"{what} (stalled at {last})" if stalled else what
            also = "".join(
                f"; other worker {w.log.name}: stats {w.stats(full=True)}" for w in others
            )
            raise AssertionError(
                f"timed out waiting for {what}; stats {worker.stats(full=True)}{also}; "
                f"missing (symbol, interval): {missing() if missing else '?'}; "
                f"log tail: {worker.log.read_text()[-2000:]}"
            )
        time.sleep(1)
