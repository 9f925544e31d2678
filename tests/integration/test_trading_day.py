"""A trading day on the real stack: a regular session of 1-second bars with ids (as a vendor's
1-second bar feed sends them, some revised) for several symbols, ticks with ids for others, and
200 users' rules at the largest lookbacks they are allowed, through one worker.

It used to crash the worker: one symbol's state grew past Kafka's record limit, and every
restart met the same crash. Now: the worker never stops, every record is stored, every state
stays under the budget (from /stats), the CPU each record costs does not grow with the hour of
the day, the worker's memory stays flat, and every candle equals pandas and ``ta``."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import orjson
import pytest

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from stockapp.tables.signals.limits import MAX_TOTAL_LOOKBACK, MAX_USER_RULES
from tests.helpers import http_json
from tests.integration.test_pipeline import stored_rows
from tests.integration.workers import Worker, produce, wait_for, worker_env
from tests.oracle import OhlcBar, assert_close_or_null, expected_bar_candles

TZ = "America/New_York"
INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
OPEN_MS = 1_767_623_400_000  # 2026-01-05 09:30 New York
SESSION_S = 23_400  # 09:30-16:00
ONE_BY_ONE = ["DAYA", "DAYB"]  # 1-second bars, one a record
PACKED = ["DAYC", "DAYD", "DAYE", "DAYF"]  # 1-second bars, a minute of them a record
TICKERS = ["DAYT", "DAYU"]  # ticks with ids, one every 2 s
REVISED_EVERY = 97  # every 97th one-by-one bar is sent again 3 bars later with other values


def _bar(symbol: str, ts: int, rng: random.Random, price: float) -> dict:
    open_, close = price, price * (1 + rng.gauss(0, 0.0002))
    high = max(open_, close) * (1 + abs(rng.gauss(0, 0.0001)))
    low = min(open_, close) * (1 - abs(rng.gauss(0, 0.0001)))
    return {
        "symbol": symbol,
        "ts": ts,
        "price": close,
        "open": open_,
        "high": high,
        "low": low,
        "volume": rng.randint(1, 900),
        "bar_seconds": 1,
        "id": f"{symbol}:{ts}:1s",
    }


def build_day() -> tuple[list[tuple[bytes, bytes]], list[OhlcBar]]:
    """The session's records in the order a feed sends them (second by second, every symbol),
    and the bars that count (each id's last version)."""
    rng = random.Random(23)
    prices = {s: 50.0 + 10 * i + rng.random() for i, s in enumerate(ONE_BY_ONE + PACKED)}
    prices.update({s: 20.0 + rng.random() for s in TICKERS})
    records: list[tuple[bytes, bytes]] = []
    counted: dict[str, OhlcBar] = {}
    pending: dict[int, list[dict]] = {}
    minute: dict[str, list[dict]] = {s: [] for s in PACKED}

    def count(body: dict) -> None:
        counted.pop(body["id"], None)  # a revision's arrival is its place
        counted[body["id"]] = OhlcBar(
            body["symbol"],
            body["ts"],
            body.get("open", body["price"]),
            body.get("high", body["price"]),
            body.get("low", body["price"]),
            body["price"],
            float(body["volume"]),
        )

    for second in range(SESSION_S):
        ts = OPEN_MS + second * 1000
        for symbol in ONE_BY_ONE + PACKED:
            prices[symbol] *= 1 + rng.gauss(0, 0.0005)
            body = _bar(symbol, ts, rng, prices[symbol])
            count(body)
            if symbol in PACKED:
                minute[symbol].append(body)
                if len(minute[symbol]) == 60:
                    records.append((symbol.encode(), orjson.dumps(minute[symbol])))
                    minute[symbol] = []
                continue
            records.append((symbol.encode(), orjson.dumps(body)))
            if second % REVISED_EVERY == 5:
                revision = {**body, "high": body["high"] * 1.001, "volume": 950}
                pending.setdefault(second + 3, []).append(revision)
        for revision in pending.pop(second, []):
            count(revision)
            records.append((revision["symbol"].encode(), orjson.dumps(revision)))
        if second % 2 == 0:
            for n, symbol in enumerate(TICKERS):
                prices[symbol] *= 1 + rng.gauss(0, 0.0005)
                body = {
                    "symbol": symbol,
                    "ts": ts + 300 + n,
                    "price": prices[symbol],
                    "volume": rng.randint(1, 50),
                    "id": f"run:{symbol}:{second}",
                }
                count(body)
                records.append((symbol.encode(), orjson.dumps(body)))
    assert not pending and not any(minute.values())
    return records, list(counted.values())


def _rules() -> list[dict]:
    """200 users' rules on every symbol: breakouts taking the whole lookback allowed, the rest
    crossovers and thresholds over the default indicators."""
    per = MAX_TOTAL_LOOKBACK // 4
    rules = [
        {"name": f"brk{i}", "kind": kind, "lookback": per, "interval": interval}
        for i, (kind, interval) in enumerate(
            [
                ("breakout_up", "1m"),
                ("breakout_down", "1m"),
                ("breakout_up", "5m"),
                ("breakout_down", "1m"),
            ]
        )
    ]
    levels = [20 + 0.5 * i for i in range(MAX_USER_RULES - len(rules))]
    for i, level in enumerate(levels):
        if i % 3 == 0:
            rule = {"kind": "crosses_above", "left": "close", "right": level}
        elif i % 3 == 1:
            rule = {"kind": "crosses_below", "left": "ema_12", "right": "sma_20"}
        else:
            rule = {"kind": "leaves_above", "series": "rsi_14", "level": 50 + i % 40}
        rules.append({"name": f"r{i:03d}", "interval": "1m" if i % 2 else "5m", **rule})
    return rules


def _cpu_and_rss(pid: int) -> tuple[float, int]:
    """(CPU seconds used, resident bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def _ready(port: int) -> bool:
    try:
        return http_json(port, "/ready", timeout=5)[0] == 200
    except OSError:  # not listening yet
        return False


@pytest.fixture
def day_worker(stack, unique, tmp_path):
    keyspace = f"stockapp_day_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "day",
        unique,
        keyspace,
        tmp_path / "data",
        STOCKAPP_IDLE_CLOSE_SECONDS="3",
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_MARKET_TIMEZONE=TZ,
    )
    worker = Worker(env, tmp_path / "worker.log")
    yield env, worker
    worker.stop()
    cluster, session = connect(stack, keyspace=None)
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    cluster.shutdown()


def test_a_trading_day_of_second_bars_and_200_rules_stays_within_every_bound(stack, day_worker):
    env, worker = day_worker
    port = int(env["STOCKAPP_WEB_PORT"])
    bootstrap = stack.kafka_bootstrap[0]
    topic = env["STOCKAPP_TOPIC_QUOTES"]
    records, bars = build_day()
    asyncio.run(produce(bootstrap, topic, []))  # the topic, with the worker's partitions
    worker.start()
    wait_for(lambda: _ready(port), 180, "the worker to be ready", worker)
    for rule in _rules():
        status, body, _ = http_json(
            port, "/api/rules", "POST", orjson.dumps(rule), {"Content-Type": "application/json"}
        )
        assert status == 201, (rule, body)
    over = {"name": "one_more", "kind": "breakout_up", "lookback": 1, "interval": "1m"}
    status, body, _ = http_json(
        port, "/api/rules", "POST", orjson.dumps(over), {"Content-Type": "application/json"}
    )
    assert status == 409, body  # the cap holds: these are the most rules there may be

    asyncio.run(produce(bootstrap, topic, records))
    samples: list[tuple[int, float, int]] = []  # (records stored, CPU s, RSS bytes)

    def sample() -> bool:
        assert worker.proc is not None and worker.proc.poll() is None, "the worker ended"
        stored = worker.stats().get("stored_records", 0)
        samples.append((stored, *_cpu_and_rss(worker.proc.pid)))
        return stored >= len(records)

    wait_for(sample, 900, "every record stored", worker)

    cluster, session = connect(stack, keyspace=env["STOCKAPP_CASSANDRA_KEYSPACE"])
    try:
        expected = {}
        for interval in INTERVALS:
            for _, row in expected_bar_candles(bars, interval, TZ).iterrows():
                expected[(row["symbol"], interval, int(row["start"]))] = row
        wait_for(lambda: len(stored_rows(session)) >= len(expected), 300, "every candle", worker)
        stored = stored_rows(session)
    finally:
        cluster.shutdown()

    full = worker.stats(full=True)
    counters, state = full["counters"], full["state"]
    assert worker.proc.poll() is None
    log = worker.log.read_text(errors="replace")
    assert "We experienced a crash" not in log and "Traceback" not in log
    # Every record applied (the revisions too), none refused, none late.
    assert counters["stored_records"] == len(records)
    for name in ("invalid", "over_budget", "late", "expired_ids", "batch_retries"):
        assert counters.get(name, 0) == 0, (name, counters)
    assert counters["revised"] == sum(1 for s in range(SESSION_S) if s % REVISED_EVERY == 5) * 2
    # Every state under the budget, the largest with 2,000 rule values in it.
    assert 0 < state["largest_bytes"] <= state["budget_bytes"], state

    # CPU per record stored, by quarter of the day: flat (it grew with the square of the
    # hour when every bar id of the day was kept). The first quarter carries the warm-up.
    def cost(lo: float, hi: float) -> float:
        window = [s for s in samples if lo * len(records) <= s[0] <= hi * len(records)]
        (r0, c0, _), (r1, c1, _) = window[0], window[-1]
        return (c1 - c0) / max(r1 - r0, 1)

    second, last = cost(0.25, 0.5), cost(0.75, 1.0)
    assert last <= 2 * second, f"CPU per record {second * 1e6:.0f} µs then {last * 1e6:.0f} µs"
    # Memory flat from a quarter in to the end (rules, indicators and id memories are full
    # by then): a leak of anything per record would show.
    quarter_rss = next(s[2] for s in samples if s[0] >= 0.25 * len(records))
    end_rss = samples[-1][2]
    assert end_rss - quarter_rss < 40 * 2**20, (quarter_rss, end_rss)
    print(
        f"trading day: {len(records)} records, largest state {state['largest_bytes']} B, "
        f"CPU per record {second * 1e6:.0f} then {last * 1e6:.0f} µs, RSS "
        f"{quarter_rss / 2**20:.0f} then {end_rss / 2**20:.0f} MiB"
    )

    assert set(stored) == set(expected)
    for key, row in expected.items():
        got = stored[key]
        ours = (got.open, got.high, got.low, got.close, got.volume, got.trades)
        theirs = tuple(row[k] for k in ("open", "high", "low", "close", "volume", "trades"))
        assert ours == theirs, (key, ours, theirs)
        for name in ("sma_20", "ema_26", "rsi_14", "macd_signal", "bb_lower", "vwap"):
            assert_close_or_null(getattr(got, name), row[name], (key, name))
