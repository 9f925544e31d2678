"""Small helpers shared by tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from stockapp.devstack.worker import free_port  # noqa: F401 - tests import it from here

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command with extra environment variables; output captured as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        args, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO
    )


def wait_http(url: str, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, idle_ms: int = 3000) -> list:
    """Every record of a topic, from the beginning up to the end each partition had when the
    read began (or, should the consumer never reach an end, as behind a transaction marker,
    until none arrives for ``idle_ms``).

    Reading to the end offsets, not to a silence, is what keeps the pipeline tests' five reads
    each from costing ``idle_ms`` apiece. A record written after the read began is not waited
    for: a test reads once what it needs is written, or with ``read_topic_until``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    # Without a group, start() waits for the topic's metadata and takes every partition.
    await consumer.start()
    out = []
    try:
        tps = list(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while left:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                return out
            for records in batch.values():
                out.extend(records)
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        return out
    finally:
        await consumer.stop()


async def read_topic_until(
    bootstrap: str, topic: str, done: Callable[[list], bool], timeout: float = 60
) -> list:
    """``read_topic`` again, every half second, until ``done(records)`` or ``timeout`` (then
    the last read, for the test's assertion to say what is missing): for what a worker
    writes to a topic after what the test could wait for (a candle is published after its
    Cassandra write, a dead letter after the failed delivery it records)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await read_topic(bootstrap, topic)
        if done(records) or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.5)


def topic_env(topic: str) -> dict[str, str]:
    """Settings that point a command's quotes, candles, late, dead-letter and signals topics at
    names of a test's own."""
    return {
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_LATE": f"{topic}.l",
        "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
        "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
        "STOCKAPP_TOPIC_SIGNALS": f"{topic}.s",
        "STOCKAPP_TOPIC_SIGNALS_DLQ": f"{topic}.sd",
    }


def http_json(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of a request to a local worker, errors included. A body
    that is not a JSON object comes back as {"value": ...}, or {"text": ...} if not JSON."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"text": raw[:200].decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"value": parsed}, got


def documented_verify():
    """``verify(secret, header, body)``: the webhook verification snippet of docs/signals.md
    ("Verifying a POST"), run as a receiver would run it."""
    import re

    text = (REPO / "docs" / "signals.md").read_text()
    section = text[text.index("### Verifying a POST") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no Python snippet under 'Verifying a POST' in docs/signals.md"
    scope: dict = {}
    exec(code.group(1), scope)  # our own documentation's snippet
    return scope["verify"]
