"""Takeover and catch-up after a worker is SIGKILLed, with and without standby replicas.

Two workers share a live stream (paced, event time = now); one is SIGKILLed. Measured from
the kill: *takeover*, until the survivor processes records of every partition the dead one
had; *caught up*, until the survivor is within two seconds of the stream's head on all of them.
Needs the local stack (`make up`). Prints one table; docs/operations.md quotes it.

    .venv/bin/python -m bench.takeover [--symbols 500] [--rate 200] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from stockapp.db.migrate import migrate
from stockapp.devstack.worker import WorkerProcess, free_port
from stockapp.settings import get_settings
from stockapp.sinks.cassandra_session import connect

PARTITIONS = 8


@dataclass
class Result:
    standby: int
    session_timeout: float
    takeover_s: float | None
    caught_up_s: float | None
    moved: int  # partitions the dead worker had


async def _produce(bootstrap: str, topic: str, symbols: list[str], rate: int, stop: asyncio.Event):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        n = 0
        began = time.monotonic()
        while not stop.is_set():
            symbol = symbols[n % len(symbols)]
            now_ms = int(time.time() * 1000)
            body = {"symbol": symbol, "ts": now_ms, "price": 100 + (n % 97) / 10, "volume": 1}
            await producer.send(topic, orjson.dumps(body), key=symbol.encode())
            n += 1
            ahead = n / rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()


async def _positions(worker: WorkerProcess) -> dict[int, int]:
    stats = await asyncio.to_thread(worker.stats, True)
    return {int(p): o for p, o in stats.get("positions", {}).items()}


async def _wait(what: str, predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.25)


async def measure(
    standby: int, session_timeout: float, symbols: int, rate: int, verbose: bool = False
) -> Result:
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap[0]
    unique = uuid.uuid4().hex[:10]
    keyspace = f"stockapp_bench_{unique}"
    topic = f"bench.{unique}.quotes"
    migrate(settings, keyspace=keyspace)
    workdir = Path(tempfile.mkdtemp(prefix="stockapp-takeover-"))
    env = {
        "STOCKAPP_APP_ID": f"stockapp-bench-{unique}",
        # Its quotes are stamped now, at whatever hour it runs: the always-open calendar (what
        # a quote's session check costs is in the throughput bench, which runs on XNYS).
        "STOCKAPP_EXCHANGE": "ALWAYS_OPEN",
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
        "STOCKAPP_TOPIC_LATE": f"{topic}.l",
        "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
        "STOCKAPP_TOPIC_SIGNALS": f"{topic}.s",
        "STOCKAPP_TOPIC_SIGNALS_DLQ": f"{topic}.sd",
        "STOCKAPP_CASSANDRA_KEYSPACE": keyspace,
        "STOCKAPP_DATA_DIR": str(workdir / "data"),
        "STOCKAPP_TABLE_STORE": "rocksdb",
        "STOCKAPP_STANDBY_REPLICAS": str(standby),
        "STOCKAPP_KAFKA_SESSION_TIMEOUT_SECONDS": str(session_timeout),
    }
    workers = [
        WorkerProcess({**env, "STOCKAPP_WEB_PORT": str(free_port())}, workdir / f"w{i}.log")
        for i in range(2)
    ]
    names = [f"T{i:05d}" for i in range(symbols)]
    stop = asyncio.Event()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    producing = None
    try:
        workers[0].start()
        await asyncio.sleep(3)  # the topic exists (the worker creates it) before producing
        producing = asyncio.create_task(_produce(bootstrap, topic, names, rate, stop))
        workers[1].start()
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

        async def split() -> bool:  # both workers process, every partition has its owner
            a, b = await _positions(workers[0]), await _positions(workers[1])
            return bool(a) and bool(b) and len(set(a) | set(b)) == PARTITIONS

        await _wait("both workers to share the stream", split, 180)
        await asyncio.sleep(20)  # the standby copies fill, the state grows
        dead, survivor = workers
        moved = set(await _positions(dead))
        dead.stop(signal.SIGKILL)
        killed = time.monotonic()
        takeover = caught_up = None
        allowance = 2 * rate / PARTITIONS  # two seconds of records per partition
        while time.monotonic() - killed < session_timeout + 180:
            positions = await _positions(survivor)
            now = time.monotonic() - killed
            if takeover is None and moved <= set(positions):
                takeover = now
            if takeover is not None:
                ends = await consumer.end_offsets([tps[p] for p in moved])
                lags = {p: ends[tps[p]] - 1 - positions.get(p, -1) for p in moved}
                if verbose and int(now * 4) % 20 == 0:
                    print(f"  {now:.0f} s after the kill: lag {lags}", flush=True)
                if all(lag <= allowance for lag in lags.values()):
                    caught_up = now
                    break
            await asyncio.sleep(0.25)
        return Result(standby, session_timeout, takeover, caught_up, len(moved))
    finally:
        stop.set()
        if producing is not None:
            await producing
        await consumer.stop()
        for worker in workers:
            worker.stop()
        cluster, session = connect(settings, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


def _fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=int, default=200, help="quotes per second")
    parser.add_argument("--session-timeouts", default="60,10")
    parser.add_argument("--verbose", action="store_true", help="print the lag while it runs")
    args = parser.parse_args()
    results = []
    for timeout in [float(t) for t in args.session_timeouts.split(",")]:
        for standby in (0, 1):
            results.append(
                asyncio.run(measure(standby, timeout, args.symbols, args.rate, args.verbose))
            )
            print(results[-1], flush=True)
    print(f"\n{args.symbols} symbols, {args.rate} quotes/s, 2 workers, 1 SIGKILLed")
    print("| session timeout | standby replicas | takeover | caught up |")
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r.session_timeout:g} s | {r.standby} | {_fmt(r.takeover_s)} "
            f"| {_fmt(r.caught_up_s)} |"
        )


if __name__ == "__main__":
    main()
