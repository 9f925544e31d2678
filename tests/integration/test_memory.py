"""20,000 symbols through one worker (RocksDB store): memory stays flat once every symbol has
been seen, the decoded states shrink back to the cache's bound once their candles close, and
/stats stays small. Sizes, not speeds: nothing here is timed."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import orjson

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from tests.integration.workers import Worker, produce, wait_for, worker_env

SYMBOLS = [f"M{i:05d}" for i in range(20_000)]
ROUNDS = 3
# Rounds after which every symbol has its state and forming candles. RocksDB's write buffers
# and block cache fill up to their bound meanwhile: the test keeps that bound at its minimum
# (4 MiB a partition database) so that filling it does not read as growth.
WARM = 2
CACHE = 10_000  # STOCKAPP_STATE_CACHE_SYMBOLS, the default
T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC: past, so only event time closes candles


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_twenty_thousand_symbols_keep_memory_flat(stack, unique, tmp_path):
    keyspace = f"stockapp_mem_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "mem",
        unique,
        keyspace,
        tmp_path / "data",
        STOCKAPP_TABLE_STORE="rocksdb",
        # A 1d candle keeps each symbol's state forming until the end; more intervals would
        # only add closes to wait for (each one a Cassandra write), not sizes to check.
        STOCKAPP_INTERVALS="1m,1d",
        STOCKAPP_STORE_RAW_QUOTES="false",
        STOCKAPP_STATE_CACHE_SYMBOLS=str(CACHE),
        STOCKAPP_ROCKSDB_MEMORY_MB="4",
    )
    records = []
    for r in range(ROUNDS):
        for i, symbol in enumerate(SYMBOLS):
            body = {"symbol": symbol, "ts": T0 + r * 60_000 + i, "price": 10 + r}
            records.append((symbol.encode(), orjson.dumps({**body, "volume": 1})))
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.start()
        sizes = {}
        for done in (WARM, ROUNDS):
            wait_for(
                lambda done=done: worker.stats().get("quotes", 0) >= done * len(SYMBOLS),
                600,
                f"{done} rounds",
                worker,
            )
            sizes[done] = rss_mib(worker.proc.pid)
        # The stream has ended: the idle close closes every candle (each symbol's three 1m
        # and its 1d), and the states without a forming candle leave the cache.
        closes = ROUNDS * len(SYMBOLS) + len(SYMBOLS)
        wait_for(
            lambda: (
                worker.stats().get("candles_closed", 0) >= closes
                and worker.stats(full=True).get("symbols_loaded", CACHE + 1) <= CACHE
            ),
            300,
            "every candle closed and the state cache back to its bound",
            worker,
        )
        url = f"http://127.0.0.1:{env['STOCKAPP_WEB_PORT']}/stats"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
        stats = json.loads(body)
        print(
            f"20,000 symbols: RSS {sizes[WARM]:.0f} MiB after {WARM} rounds, "
            f"{sizes[ROUNDS]:.0f} MiB after {ROUNDS}; /stats {len(body)} bytes; "
            f"{stats['symbols_loaded']} states loaded at the end"
        )
        assert stats["counters"]["quotes"] == ROUNDS * len(SYMBOLS)
        assert stats["counters"]["candles_closed"] == closes
        assert stats["counters"].get("late", 0) == 0
        assert stats["state"]["symbols"] == len(SYMBOLS)  # none refused at the default limit
        assert stats["state"]["watched"] == 0  # every candle closed: nothing left to watch
        assert len(body) < 16_384
        # One more round of 20,000 quotes (20,000 1m candles closed) after the warm-up.
        assert sizes[ROUNDS] - sizes[WARM] < 0.1 * sizes[WARM], sizes
    finally:
        worker.stop()
        cluster, session = connect(stack, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
