"""Faults on the real stack: the worker keeps every number exact through them.

Each test is bounded in time and leaves the servers as it found them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stockapp.db.migrate import migrate
from stockapp.devstack import processes
from stockapp.devstack.cassandra import cassandra_server
from stockapp.sinks.cassandra_session import connect
from tests.helpers import create_topic, read_topic
from tests.integration.test_pipeline import stored_rows
from tests.integration.workers import Worker, wait_for, worker_env
from tests.oracle import Tick, assert_candle_row, expected_candles

TZ = "America/New_York"
SYMBOLS = ["FA", "FB", "FC", "FD"]
GRACE_MS = 2000


def _ready(port: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


async def _live_ticks(
    bootstrap: str, topic: str, seconds: float, rate: float, during, timings: dict | None = None
) -> list:
    """Ticks stamped with the wall clock, ``rate`` a second for ``seconds``, while
    ``during()`` runs; returns what was sent (acknowledged). ``timings`` gets, by (partition,
    offset), each tick's stamp and when the broker acknowledged it (wall clock, ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent: list[Tick] = []
    try:
        side = asyncio.ensure_future(during())
        begin = time.monotonic()
        n = 0
        while time.monotonic() - begin < seconds:
            symbol = SYMBOLS[n % len(SYMBOLS)]
            tick = Tick(symbol, int(time.time() * 1000), 100.0 + (n % 97) / 10, float(1 + n % 9))
            body = {
                "symbol": tick.symbol,
                "ts": tick.ts,
                "price": tick.price,
                "volume": tick.volume,
            }
            meta = await producer.send_and_wait(topic, orjson.dumps(body), key=symbol.encode())
            if timings is not None:
                timings[(meta.partition, meta.offset)] = (tick, int(time.time() * 1000))
            sent.append(tick)
            n += 1
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
        await side
    finally:
        await producer.stop()
    return sent


def _all_stored(worker: Worker, records: int, wait_s: float) -> None:
    """Waits until the worker has stored every one of ``records`` records: only then are its
    late records on the late topic and its counters final (a batch publishes its side
    outputs and counts them once its Cassandra writes are acknowledged)."""
    wait_for(
        lambda: worker.stats().get("stored_records", 0) >= records,
        wait_s,
        f"all {records} records stored",
        worker,
    )


def _late_ticks(bootstrap: str, env: dict, timings: dict) -> list[tuple]:
    """The ticks the worker sent to the late topic: (partition and offset, the tick, when the
    broker acknowledged it, the reason)."""
    late = []
    for record in asyncio.run(read_topic(bootstrap, env["STOCKAPP_TOPIC_LATE"], idle_ms=2000)):
        headers = dict(record.headers)
        source = (
            int(headers["stockapp.source.partition"]),
            int(headers["stockapp.source.offset"]),
        )
        tick, acked = timings.get(source, (None, None))
        late.append((source, tick, acked, headers["stockapp.reason"].decode()))
    return late


def _late_report(late: list[tuple], worker: Worker) -> str:
    """When each late tick was stamped and acknowledged, and what the worker's timer said when
    it closed their windows: what a failure needs explained."""
    lines = [
        f"late {source}: {reason}; stamped {tick.ts if tick else None}, acked {acked} "
        f"({acked - tick.ts if tick else '?'} ms later)"
        for source, tick, acked, reason in late
    ]
    text = worker.log.read_text(errors="replace")
    closes = [line for line in text.splitlines() if "by the clock" in line]
    return "\n".join(lines + closes[-40:])


def _one_minute_candles(stack, env: dict, worker: Worker, ticks: list, wait_s: float) -> tuple:
    """(stored 1m candles, pandas' 1m candles of ``ticks``, stored quote rows), once at least
    as many candles as expected are stored."""
    expected = {
        (row["symbol"], int(row["start"])): row
        for _, row in expected_candles(ticks, "1m", TZ).iterrows()
    }
    cluster, session = connect(stack, keyspace=env["STOCKAPP_CASSANDRA_KEYSPACE"])
    try:

        def stored() -> dict:
            rows = stored_rows(session)
            return {(s, start): r for (s, i, start), r in rows.items() if i == "1m"}

        wait_for(lambda: len(stored()) >= len(expected), wait_s, "every 1m candle", worker)
        quotes = session.execute("SELECT count(*) FROM quotes", timeout=60).one()[0]
        return stored(), expected, quotes
    finally:
        cluster.shutdown()


@pytest.fixture
def cassandra_fault_worker(stack, unique, tmp_path):
    pid = processes.read_pid(cassandra_server(stack).pid_file)
    if pid is None:
        pytest.skip("Cassandra was not started by this stack: the test will not freeze it")
    keyspace = f"stockapp_ft_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "ft",
        unique,
        keyspace,
        tmp_path / "data",
        STOCKAPP_GRACE_SECONDS=str(GRACE_MS / 1000),
        STOCKAPP_TABLE_STORE="memory",  # raw-quote rows on: every batch waits on Cassandra
        STOCKAPP_LOG_LEVEL="INFO",  # the timer's closes, for a failure to explain itself
    )
    asyncio.run(create_topic(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], 8))
    worker = Worker(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield env, worker, pid
    finally:
        if processes.read_pid(cassandra_server(stack).pid_file) == pid:
            os.kill(pid, signal.SIGCONT)  # whatever happened, a frozen Cassandra runs again
        worker.stop()
        cluster, session = connect(stack, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def test_frozen_cassandra_across_a_minute_end_makes_nothing_late(stack, cassandra_fault_worker):
    """Cassandra frozen (SIGSTOP) from 12 s before a minute ends until 10 s after it, under
    live traffic: /ready says 503 naming cassandra meanwhile; afterwards no tick is late and
    every 1m candle equals pandas over every tick produced."""
    env, worker, pid = cassandra_fault_worker
    port = env["STOCKAPP_WEB_PORT"]
    wait_for(lambda: _ready(port)[0] == 200, 120, "the worker to be ready", worker)
    # Start so that a minute ends 12 s into the freeze, which starts 8 s into the traffic.
    to_boundary = 60 - time.time() % 60
    time.sleep((to_boundary - 20) % 60)
    seen: dict = {}

    async def freeze() -> None:
        await asyncio.sleep(8)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(12 + 4)  # the minute ends, and grace + the timer pass
            seen["ready"] = await asyncio.to_thread(_ready, port)
            await asyncio.sleep(6)
        finally:
            os.kill(pid, signal.SIGCONT)

    bootstrap = stack.kafka_bootstrap[0]
    ticks = asyncio.run(_live_ticks(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], 40, 25, freeze))
    status, body = seen["ready"]
    assert status == 503 and body["checks"]["cassandra"] is False, body

    _all_stored(worker, len(ticks), 180)
    rows, expected, _ = _one_minute_candles(stack, env, worker, ticks, 180)
    assert worker.stats().get("late", 0) == 0
    assert asyncio.run(read_topic(bootstrap, env["STOCKAPP_TOPIC_LATE"], idle_ms=2000)) == []
    assert set(rows) == set(expected)
    for key, row in expected.items():
        assert_candle_row(rows[key], row, key)


async def _recreate_topic(bootstrap: str, topic: str, group: str) -> None:
    """Deletes and creates ``topic`` again, and leaves ``group`` with committed offsets of the
    topic's earlier life (its ends then: what a worker that had caught up committed), as
    Kafka keeps them for a while after a deletion (seconds on a loaded 4.1 broker; until the
    group expires on others): the worker must read the new topic from its start all the
    same. (The first run's own commits are not relied on: a worker stopped right after its
    last batch may not have committed it, which only means a replay.)"""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.structs import OffsetAndMetadata, TopicPartition

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        ends = await reader.end_offsets([TopicPartition(topic, p) for p in range(8)])
    finally:
        await reader.stop()
    committed = {tp: OffsetAndMetadata(end, "") for tp, end in ends.items() if end > 0}
    assert committed, "the first run's topic is empty"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while True:  # deletion completes in the background; creation fails until then
            response = await admin.create_topics([NewTopic(topic, 8, 1)])
            (error_code,) = {error[1] for error in response.topic_errors}
            if error_code == 0:
                break
            assert time.monotonic() < deadline, f"could not recreate {topic}: {error_code}"
            await asyncio.sleep(0.5)
        while await admin.list_consumer_group_offsets(group):  # let the broker drop them...
            assert time.monotonic() < deadline, "the broker kept the offsets for a minute"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(  # ... then put them back, as a slower broker would keep them
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(committed))
        await consumer.commit(dict(committed))
    finally:
        await consumer.stop()


def test_a_recreated_quotes_topic_is_processed_not_skipped(stack, unique, tmp_path):
    """The quotes topic deleted and created again between two runs: its offsets start at 0
    again, below every symbol's replay guard and below the group's committed offsets (kept
    by the broker); the worker reads the new topic from its start, sees the new topic id and
    applies the records instead of skipping them as replays."""
    from tests.integration.workers import produce

    keyspace = f"stockapp_rt_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env("rt", unique, keyspace, tmp_path / "data", STOCKAPP_TABLE_STORE="memory")
    bootstrap, topic = stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"]

    def records(start: int, n: int) -> list:
        return [
            (
                b"RT1",
                orjson.dumps(
                    {"symbol": "RT1", "ts": start + i * 1000, "price": 5.0 + i, "volume": 1}
                ),
            )
            for i in range(n)
        ]

    t0 = int(time.time() * 1000) - 600_000
    asyncio.run(produce(bootstrap, topic, records(t0, 50)))
    worker = Worker(env, tmp_path / "worker.log")
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        worker.start()
        wait_for(lambda: worker.stats().get("quotes", 0) >= 50, 120, "the first run", worker)
        worker.stop()
        asyncio.run(_recreate_topic(bootstrap, topic, env["STOCKAPP_APP_ID"]))
        asyncio.run(produce(bootstrap, topic, records(t0 + 60_000, 30)))
        worker.start()
        wait_for(lambda: worker.stats().get("quotes", 0) >= 30, 120, "the second run", worker)
        stats = worker.stats()
        # Each new record applied once. (Records fetched before the seek back to the start
        # come again and are skipped as the replays they are: "duplicates" may count them.)
        assert stats["quotes"] == 30 and stats.get("topic_recreated", 0) >= 1, stats
        stored = session.execute("SELECT count(*) FROM quotes", timeout=60).one()[0]
        assert stored == 80
    finally:
        worker.stop()
        cluster.shutdown()
        admin_cluster, admin = connect(stack, keyspace=None)
        admin.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        admin_cluster.shutdown()


def test_sigterm_while_cassandra_is_frozen_stops_in_bounded_time(stack, cassandra_fault_worker):
    """A batch is stuck retrying its Cassandra writes when SIGTERM comes: the worker stops by
    itself (Worker.stop allows it 60 s before SIGKILL); after a restart nothing acknowledged
    is missing."""
    env, worker, pid = cassandra_fault_worker
    port = env["STOCKAPP_WEB_PORT"]
    wait_for(lambda: _ready(port)[0] == 200, 120, "the worker to be ready", worker)
    took: dict = {}

    async def freeze_and_stop() -> None:
        await asyncio.sleep(3)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(5)  # the batch in flight now waits on Cassandra
            began = time.monotonic()
            await asyncio.to_thread(worker.stop, signal.SIGTERM)
            took["seconds"] = time.monotonic() - began
        finally:
            os.kill(pid, signal.SIGCONT)

    bootstrap = stack.kafka_bootstrap[0]
    ticks = asyncio.run(
        _live_ticks(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], 10, 25, freeze_and_stop)
    )
    print(f"SIGTERM with Cassandra frozen: the worker stopped in {took['seconds']:.1f} s")
    assert worker.proc.returncode != -signal.SIGKILL
    worker.start()
    cluster, session = connect(stack, keyspace=env["STOCKAPP_CASSANDRA_KEYSPACE"])
    try:
        wait_for(
            lambda: (
                session.execute("SELECT count(*) FROM quotes", timeout=60).one()[0] >= len(ticks)
            ),
            180,
            "every tick stored after the restart",
            worker,
        )
    finally:
        cluster.shutdown()


def test_cassandra_stopped_for_a_minute_loses_nothing(stack, cassandra_fault_worker):
    """Cassandra's process stopped for 60 s under live traffic, then started again: /ready
    says 503 naming cassandra meanwhile and 200 after; every tick is stored, none is late, and
    every 1m candle equals pandas over every tick produced.

    The stop comes about a tenth of a second before a minute ends (later by the producer's
    start, a fraction of a second), so that the minute's last ticks meet the stopping server
    and its candle closes during the outage (a batch in flight then, or the timer's close,
    waits on Cassandra: both must come out exact)."""
    from stockapp.devstack.__main__ import up

    env, worker, _ = cassandra_fault_worker
    port = env["STOCKAPP_WEB_PORT"]
    server = cassandra_server(stack)
    wait_for(lambda: _ready(port)[0] == 200, 120, "the worker to be ready", worker)
    # The ticks start 5.1 s before a minute ends; the stop comes 5 s into them.
    time.sleep((60 - 5.1 - time.time() % 60) % 60)
    seen: dict = {}

    async def outage() -> None:
        await asyncio.sleep(5)
        # Off the producer's loop: stopping Cassandra takes seconds, and ticks stamped
        # meanwhile would reach Kafka that much later (late by the test, not by the worker).
        await asyncio.to_thread(processes.stop, server.pid_file)
        began = time.monotonic()
        try:
            await asyncio.sleep(10)
            seen["during"] = await asyncio.to_thread(_ready, port)
            await asyncio.sleep(max(0.0, 60 - (time.monotonic() - began)))
        finally:
            await asyncio.to_thread(up, stack)

    bootstrap = stack.kafka_bootstrap[0]
    timings: dict = {}
    topic = env["STOCKAPP_TOPIC_QUOTES"]
    ticks = asyncio.run(_live_ticks(bootstrap, topic, 70, 20, outage, timings))
    status, body = seen["during"]
    assert status == 503 and body["checks"]["cassandra"] is False, body
    wait_for(lambda: _ready(port)[0] == 200, 300, "ready again after the restart", worker)
    _all_stored(worker, len(ticks), 300)

    # The wall clock closes a window only once every record the partition held when the
    # close read the clock is processed (docs/streaming.md, "Closing and lateness"): a tick
    # can be late only if it reached Kafka more than the grace period after its own time,
    # and was acknowledged later still. On a machine loaded by Cassandra's restart, a producer
    # can be that slow; the worker must never judge late a tick that was not.
    late = _late_ticks(bootstrap, env, timings)
    unexplained = [t for t in late if t[1] is None or t[2] - t[1].ts <= GRACE_MS]
    assert not unexplained, _late_report(late, worker)
    assert worker.stats().get("late", 0) == len(late)
    dropped = {(t[1].symbol, t[1].ts) for t in late}
    on_time = [t for t in ticks if (t.symbol, t.ts) not in dropped]
    rows, expected, quotes = _one_minute_candles(stack, env, worker, on_time, 300)
    assert quotes == len(ticks)
    assert set(rows) == set(expected)
    for key, row in expected.items():
        assert_candle_row(rows[key], row, key)
