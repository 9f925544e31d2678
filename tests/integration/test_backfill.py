"""`stockapp backfill` on the real Cassandra: candles equal pandas/ta, a second run changes
nothing, and a worker streaming what follows continues the history's indicators exactly, also
after the indicator set changed in between (`db migrate` adds the new columns)."""

import asyncio
import itertools
from pathlib import Path

import orjson
import pytest

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from stockapp.sources.simulator import Simulator
from tests.helpers import BIN, run
from tests.integration.test_pipeline import stored_rows
from tests.integration.workers import Worker, produce, wait_for, with_indicators, worker_env
from tests.oracle import Tick, assert_close_or_null, expected_candles, ta_indicators

SYMBOLS = ["AAPL", "MSFT", "TSLA"]
FROM = 1_767_621_600_000  # 2026-01-05 14:00 UTC
TO = FROM + 2 * 3_600_000
LIVE_END = TO + 1_800_000
INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
TZ = "America/New_York"
# Backfill runs a set of its own; the worker then runs another (ema:9 out, sma:10 in): the
# indicators both have continue the history's exactly, sma_10 starts with the worker's first
# closed candle, and the history's rows keep their values.
INDICATORS = "sma:5,ema:9,rsi:7,macd:5:35:5,bb:10:2.5,vwap"
LIVE_INDICATORS = "sma:5,sma:10,rsi:7,macd:5:35:5,bb:10:2.5,vwap"


@pytest.fixture
def env(stack, unique, tmp_path):
    keyspace = f"stockapp_bf_{unique}"
    migrate(with_indicators(stack, INDICATORS), keyspace=keyspace)
    yield worker_env(
        "bf",
        unique,
        keyspace,
        tmp_path / "data",
        STOCKAPP_IDLE_CLOSE_SECONDS="3",
        STOCKAPP_TABLE_STORE="memory",
        STOCKAPP_INDICATORS=INDICATORS,
    )
    cluster, session = connect(stack, keyspace=None)
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    cluster.shutdown()


def backfill(env: dict) -> str:
    result = run(
        [
            str(BIN / "stockapp"),
            "backfill",
            "--source",
            "simulator",
            "--symbols",
            ",".join(SYMBOLS),
            "--seed",
            "5",
            "--tick-seconds",
            "1",
            "--from",
            str(FROM),
            "--to",
            str(TO),
        ],
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def snapshot(stack, keyspace: str) -> tuple:
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        rows = {
            k: tuple(
                getattr(r, n)
                for n in (
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                    "trades",
                    *with_indicators(stack, INDICATORS).indicator_outputs,
                )
            )
            for k, r in stored_rows(session).items()
        }
        seeds = {
            r.symbol: r.state for r in session.execute("SELECT symbol, state FROM state_seeds")
        }
        return rows, seeds
    finally:
        cluster.shutdown()


def test_backfill_then_stream_equals_ta_over_everything(stack, env):
    keyspace = env["STOCKAPP_CASSANDRA_KEYSPACE"]
    ticks = list(
        itertools.takewhile(
            lambda q: q.ts < LIVE_END, Simulator(SYMBOLS, 5, 1.0, FROM, 1.0).ticks()
        )
    )
    history = [t for t in ticks if t.ts < TO]
    live = [t for t in ticks if t.ts >= TO]

    assert f"computed {len(history)} quotes" in backfill(env)
    first = snapshot(stack, keyspace)
    backfill(env)
    assert snapshot(stack, keyspace) == first  # a second run changes nothing
    assert set(first[1]) == set(SYMBOLS)

    # History alone: the closed candles equal pandas/ta over the history.
    as_ticks = [Tick(t.symbol, t.ts, t.price, t.volume) for t in history]
    expected_history = sum(len(expected_candles(as_ticks, i, TZ, INDICATORS)) for i in INTERVALS)
    assert len(first[0]) == expected_history - len(SYMBOLS) * len(INTERVALS)  # minus forming

    # Then the set changes: `db migrate` adds sma_10's column (ema_9's stays), and the live part
    # goes through Kafka and a worker that starts from the seeds.
    live_settings = with_indicators(stack, LIVE_INDICATORS)
    assert migrate(live_settings, keyspace=keyspace).columns == ["sma_10"]
    env = {**env, "STOCKAPP_INDICATORS": LIVE_INDICATORS}
    records = [(t.symbol.encode(), orjson.dumps(t.to_json())) for t in live]
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
    everything = [Tick(t.symbol, t.ts, t.price, t.volume) for t in ticks]
    expected = {}
    for interval in INTERVALS:
        for _, row in expected_candles(everything, interval, TZ, INDICATORS).iterrows():
            expected[(row["symbol"], interval, int(row["start"]))] = row
    # sma_10 is ta's over the candles the worker closed: from the one forming at the end of
    # the history on.
    new: dict = {}
    for key in sorted(set(expected) - set(first[0]), key=lambda k: (k[0], k[1], k[2])):
        new.setdefault(key[:2], []).append(key)
    sma_10 = {}
    for keys in new.values():
        closes = [expected[k]["close"] for k in keys]
        sma_10.update(zip(keys, ta_indicators(closes, "sma:10")["sma_10"], strict=True))

    log = Path(env["STOCKAPP_DATA_DIR"]).parent / "worker.log"
    worker = Worker({**env, "STOCKAPP_LOG_LEVEL": "INFO"}, log)
    worker.start()
    try:
        cluster, session = connect(stack, keyspace=keyspace)
        wait_for(
            lambda: session.execute("SELECT count(*) FROM candles").one()[0] >= len(expected),
            240,
            "every candle closed",
            worker,
        )
        stored = stored_rows(session)
        cluster.shutdown()
        assert worker.stats().get("seeded") == len(SYMBOLS)
    finally:
        worker.stop()
    assert set(stored) == set(expected)
    for key, row in expected.items():
        got = stored[key]
        assert (got.open, got.high, got.low, got.close, got.volume, got.trades) == (
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
            row["trades"],
        ), key
        live_row = key in sma_10
        for name in live_settings.indicator_outputs:
            if name == "sma_10":
                if live_row:
                    assert_close_or_null(got.sma_10, sma_10[key], (key, name))
                else:
                    assert got.sma_10 is None, key  # a history row: not recomputed
            else:
                assert_close_or_null(getattr(got, name), row[name], (key, name))
        if live_row:
            assert got.ema_9 is None, key  # no longer configured: not written
        else:
            assert_close_or_null(got.ema_9, row["ema_9"], (key, "ema_9"))
    assert sum(1 for v in sma_10.values() if v == v) > 20  # some warmed up (NaN != NaN)
