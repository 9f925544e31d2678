"""What reads the benchmark stream, each timed from its first record to its last effect.

Each contender gets a fresh consumer (group or none) on the preloaded topic and reads it from
the beginning; slow ones stop after ``limit`` records (the table says how many they did).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from bench import profile as bench_profile
from bench.stream import PARTITIONS
from stockapp.devstack.worker import WorkerProcess, free_port
from stockapp.settings import get_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Context:
    bootstrap: str
    topic: str
    records: int  # in the topic
    keyspace: str  # with the bench_quotes table and stockapp's schema
    session: Any  # a Cassandra session on ``keyspace``
    workdir: Path
    profile: Path | None = None  # where the stockapp worker's py-spy samples go, if anywhere
    # The same quotes packed (JSON arrays of a symbol's quotes), and that topic's record count
    packed_topic: str | None = None
    packed_records: int = 0


@dataclass
class Timing:
    records: int
    seconds: float
    batches: int | None = None  # stockapp: batches its workers took (the mean batch explains a lot)
    profiled: bool = False  # under py-spy, which slows what it samples: not in the median

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


BENCH_TABLE = """CREATE TABLE IF NOT EXISTS bench_quotes (
    symbol text, ts timestamp, price double, volume double, PRIMARY KEY ((symbol), ts))"""


async def _consumer(ctx: Context) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(ctx.topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer


async def _consume(
    ctx: Context, limit: int, handle: Callable[[list[ConsumerRecord]], Awaitable[None]]
) -> Timing:
    """Feeds ``handle(records)`` batches until ``limit`` records; times first to last."""
    consumer = await _consumer(ctx)
    seen = 0
    first = None
    try:
        while seen < limit:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                if first is None:
                    first = time.monotonic()
                records = records[: limit - seen]
                await handle(records)
                seen += len(records)
        return Timing(seen, time.monotonic() - (first or time.monotonic()))
    finally:
        await consumer.stop()


async def decode_only(ctx: Context, limit: int) -> Timing:
    """The Kafka + Python ceiling: fetch and ``orjson.loads`` each record."""

    async def handle(records: list[ConsumerRecord]) -> None:
        for record in records:
            orjson.loads(record.value)

    return await _consume(ctx, limit, handle)


def _row(value: bytes) -> tuple:
    quote = orjson.loads(value)
    return (quote["symbol"], quote["ts"], float(quote["price"]), float(quote["volume"]))


async def naive(ctx: Context, limit: int) -> Timing:
    """The original design's consumer: one synchronous INSERT per message."""
    insert = ctx.session.prepare(
        "INSERT INTO bench_quotes (symbol, ts, price, volume) VALUES (?, ?, ?, ?)"
    )

    async def handle(records: list[ConsumerRecord]) -> None:
        for record in records:
            ctx.session.execute(insert, _row(record.value))

    return await _consume(ctx, limit, handle)


async def raw_writer(ctx: Context, limit: int) -> Timing:
    """The database ceiling for rows from one process: UNLOGGED batches of up to 20 rows of
    one partition (symbol), 64 batches in flight."""
    from cassandra.query import BatchStatement, BatchType

    insert = ctx.session.prepare(
        "INSERT INTO bench_quotes (symbol, ts, price, volume) VALUES (?, ?, ?, ?)"
    )
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(64)

    def send(rows: list[tuple]) -> asyncio.Future:
        done = loop.create_future()
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for row in rows:
            batch.add(insert, row)
        response = ctx.session.execute_async(batch)
        response.add_callbacks(
            lambda _: loop.call_soon_threadsafe(_settle, done, None),
            lambda exc: loop.call_soon_threadsafe(_settle, done, exc),
        )
        return done

    in_flight: set[asyncio.Future] = set()

    async def handle(records: list[ConsumerRecord]) -> None:
        by_symbol: dict[str, list[tuple]] = {}
        for record in records:
            row = _row(record.value)
            by_symbol.setdefault(row[0], []).append(row)
        for rows in by_symbol.values():
            for start in range(0, len(rows), 20):
                await slots.acquire()
                future = send(rows[start : start + 20])
                in_flight.add(future)
                future.add_done_callback(lambda f: (in_flight.discard(f), slots.release()))

    timing = await _consume(ctx, limit, handle)
    began = time.monotonic() - timing.seconds
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return Timing(timing.records, time.monotonic() - began)


def _settle(future: asyncio.Future, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


async def faust_noop(
    ctx: Context, loop: str = "aio", consumer: str = "faust", delivery: str = "stream"
) -> Timing:
    """Faust's own per-record cost: an agent that takes batches and does nothing. ``loop``:
    Faust's event loop choice (its ``--loop``: ``aio``, asyncio's; ``uvloop``). ``consumer``:
    ``faust``, Faust's own; ``stockapp``, the worker's (stockapp/faust_compat.py).
    ``delivery``: ``stream``, Faust's ``take_events``; ``queue``, the worker's
    (stockapp/delivery.py)."""
    out = ctx.workdir / f"noop-{uuid.uuid4().hex[:6]}.json"
    env = {
        **os.environ,
        "FAUST_LOOP": loop,
        "BENCH_FAUST_CONSUMER": consumer,
        "BENCH_FAUST_DELIVERY": delivery,
        "BENCH_TOPIC": ctx.topic,
        "BENCH_COUNT": str(ctx.records),
        "BENCH_OUT": str(out),
        "BENCH_APP_ID": f"bench-noop-{uuid.uuid4().hex[:8]}",
        "BENCH_BOOTSTRAP": ctx.bootstrap,
        "BENCH_WEB_PORT": str(free_port()),
        "PYTHONPATH": str(REPO),  # bench/ is not an installed package
    }
    return await _subprocess_contender(
        [sys.executable, "-m", "bench.faust_noop"], env, out, ctx.workdir / "faust-noop.log"
    )


async def _subprocess_contender(command: list[str], env: dict, out: Path, log_path: Path) -> Timing:
    """Runs a contender process until it writes ``{"first", "last", "records"}`` to ``out``."""
    log = open(log_path, "ab")  # closed below
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_path.parent,  # Faust writes its data directory into the cwd
    )
    try:
        deadline = time.monotonic() + 600
        while not out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[-1]} did not finish; see {log_path}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.1)  # written in one go; let it land
        result = json.loads(out.read_text())
        return Timing(result["records"], result["last"] - result["first"])
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


QUIX_PYTHON = REPO / ".venv-quix" / "bin" / "python"


QUIX_CANDLES = """CREATE TABLE IF NOT EXISTS quix_candles (
    symbol text, start timestamp, open double, high double, low double, close double,
    volume double, trades int, PRIMARY KEY ((symbol), start))"""


async def quix_ohlcv(ctx: Context, sink: bool = False) -> Timing | None:
    """Quix Streams, one interval (1m OHLCV per symbol), with no sink or (``sink``) writing
    its closed candles to Cassandra; ``None`` when its own environment (``make bench`` builds
    it) is missing."""
    if not QUIX_PYTHON.exists():
        print(
            f"  (Quix Streams skipped: no {QUIX_PYTHON.relative_to(REPO)}; `make bench` builds it)"
        )
        return None
    unique = uuid.uuid4().hex[:6]
    out = ctx.workdir / f"quix-{unique}.json"
    env = {
        **os.environ,
        "BENCH_TOPIC": ctx.topic,
        "BENCH_COUNT": str(ctx.records),
        "BENCH_OUT": str(out),
        "BENCH_GROUP": f"bench-quix-{unique}",
        "BENCH_BOOTSTRAP": ctx.bootstrap,
        "BENCH_STATE_DIR": str(ctx.workdir / f"quix-state-{unique}"),
        "PYTHONPATH": str(REPO),
    }
    if sink:
        settings = get_settings()
        ctx.session.execute(QUIX_CANDLES)
        ctx.session.execute("TRUNCATE quix_candles")  # each run stores its own candles
        env |= {
            "BENCH_CASSANDRA_KEYSPACE": ctx.keyspace,
            "BENCH_CASSANDRA_HOSTS": ",".join(settings.cassandra_hosts),
            "BENCH_CASSANDRA_PORT": str(settings.cassandra_port),
        }
    timing = await _subprocess_contender(
        [str(QUIX_PYTHON), "-m", "bench.quix_ohlcv"], env, out, ctx.workdir / "quix.log"
    )
    if sink:  # that it did the work: every closed window is a row
        stored = ctx.session.execute("SELECT COUNT(*) FROM quix_candles", timeout=60).one()[0]
        print(f"  (Quix Streams stored {stored:,} closed 1m candles)", flush=True)
    return timing


def packed_profile(profile: Path) -> Path:
    """Where the packed-records run's samples go, beside the other run's."""
    return profile.with_name(profile.stem + "-packed.txt")


async def stockapp_workers(
    ctx: Context,
    workers: int,
    extra: dict[str, str],
    profile: bool = False,
    packed: bool = False,
) -> Timing:
    """stockapp itself: ``workers`` worker processes, timed from the first quote any of them
    stored to the last (``stored_records``: records whose writes, messages and state are done).
    ``packed``: reads the packed topic; the rate is still in quotes."""
    unique = uuid.uuid4().hex[:8]
    topic = ctx.packed_topic if packed and ctx.packed_topic else ctx.topic
    records = ctx.packed_records if packed else ctx.records
    env = {
        "STOCKAPP_APP_ID": f"stockapp-bench-{unique}",
        # The default calendar, said so: the stream lies in its regular session (bench/stream.py).
        "STOCKAPP_EXCHANGE": "XNYS",
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_CANDLES": f"{ctx.topic}.{unique}.candles",
        "STOCKAPP_TOPIC_LATE": f"{ctx.topic}.{unique}.late",
        "STOCKAPP_TOPIC_DLQ": f"{ctx.topic}.{unique}.dlq",
        "STOCKAPP_TOPIC_SIGNALS": f"{ctx.topic}.{unique}.signals",
        "STOCKAPP_TOPIC_SIGNALS_DLQ": f"{ctx.topic}.{unique}.signals.dlq",
        "STOCKAPP_CASSANDRA_KEYSPACE": ctx.keyspace,
        "STOCKAPP_DATA_DIR": str(ctx.workdir / f"data-{unique}"),
        **extra,
    }
    procs = [
        WorkerProcess(
            {**env, "STOCKAPP_WEB_PORT": str(free_port())}, ctx.workdir / f"worker-{unique}-{i}.log"
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    spy = None
    if profile and ctx.profile is not None and procs[0].proc is not None:
        out = packed_profile(ctx.profile) if packed else ctx.profile
        spy = bench_profile.start(procs[0].proc.pid, out)
    try:
        first = None
        deadline = time.monotonic() + 1200
        while True:
            full = await asyncio.gather(*(asyncio.to_thread(p.stats, True) for p in procs))
            counts = [f.get("counters", {}) for f in full]
            stored = sum(c.get("stored_records", 0) for c in counts)
            now = time.monotonic()
            if first is None and stored > 0:
                first = now
            if stored >= records:
                batches = sum(c.get("batches", 0) for c in counts)
                done = ctx.records if packed else stored  # packed: quotes, not records
                # From the first batch any worker began (wall clock, in /stats): a stream
                # taken in one batch is stored by the first poll that sees anything.
                began = [f["first_batch_at"] for f in full if f.get("first_batch_at")]
                profiled = spy is not None
                if began:
                    return Timing(done, time.time() - min(began), batches, profiled)
                return Timing(done, now - (first or now), batches, profiled)
            for proc in procs:
                if proc.proc is not None and proc.proc.poll() is not None:
                    raise RuntimeError(f"a stockapp worker exited; see {proc.log}")
            if now > deadline:
                raise RuntimeError(f"stockapp stored {stored} of {records} records in time")
            await asyncio.sleep(0.1)
    finally:
        bench_profile.stop(spy)
        for proc in procs:
            proc.stop()
