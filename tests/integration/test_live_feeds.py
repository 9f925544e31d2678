"""The live feeds through a real worker on the real stack: the trades of a scripted session of
each fake service (tests/fake_finnhub.py, tests/fake_alpaca.py) become candles equal to a
pandas resample of the same trades with their conditions applied, across a dropped connection
whose last trades the service sends again (repeats, counted once). And Alpaca's bar history
through `stockapp backfill`."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from tests.fake_feeds_script import AwaitSubscribed, Drop, Send
from tests.helpers import BIN, run
from tests.integration.test_pipeline import stored_rows
from tests.integration.workers import Worker, wait_for, worker_env
from tests.oracle import (
    DEFAULT_INDICATORS,
    OhlcBar,
    Tick,
    assert_candle_row,
    assert_close_or_null,
    expected_bar_candles,
    expected_candles,
    late_intervals,
)

TZ = "America/New_York"
INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
GRACE_MS = 5000
T0 = 1_767_627_000_000  # 2026-01-05 15:30 UTC, a Monday's regular session
SYMBOLS = ["AAPL", "MSFT"]
OUTPUTS = ["sma_20", "ema_12", "rsi_14", "macd", "bb_upper", "vwap"]


@pytest.fixture
def feed_env(stack, unique, tmp_path):
    keyspace = f"stockapp_feed_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "feed",
        unique,
        keyspace,
        tmp_path / "data",
        STOCKAPP_IDLE_CLOSE_SECONDS="3",
        STOCKAPP_GRACE_SECONDS=str(GRACE_MS / 1000),
        STOCKAPP_MARKET_TIMEZONE=TZ,
        STOCKAPP_TABLE_STORE="memory",
    )
    yield env
    if os.environ.get("STOCKAPP_TEST_KEEP_KEYSPACE"):
        return
    cluster, session = connect(stack, keyspace=None)
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    cluster.shutdown()


def session_trades(make: Callable[[str, float, int, float, list[str], int], Any], codes):
    """Trades of two symbols over 40 minutes, in the order the service sends them: mostly in
    time order, some out of order (within the grace period, and beyond it), every kind of
    condition in ``codes`` (weights), and two identical trades in one millisecond. Returns
    (trades as the service's messages, ticks as they count: (tick, published))."""
    rng = random.Random(7)
    out: list[tuple[Any, Tick | None]] = []
    prices = {"AAPL": 230.0, "MSFT": 410.0}
    ts = T0
    n = 0
    choices, weights = zip(*codes, strict=True)
    while ts < T0 + 40 * 60_000:
        ts += rng.randint(200, 12_000)
        symbol = rng.choice(SYMBOLS)
        prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.001)), 2)
        conditions, counts = rng.choices(choices, weights)[0]
        when = ts
        if n % 29 == 28:
            when = ts - rng.choice([2_000, 70_000])  # late for 1m (and more) at times
        size = float(rng.randint(1, 500))
        n += 1
        tick = (
            None
            if counts == "none"
            else Tick(symbol, when, prices[symbol], size, counts == "volume")
        )
        out.append((make(symbol, prices[symbol], when, size, list(conditions), n), tick))
        if n == 40:  # the same trade twice in one millisecond: two trades, both count
            n += 1
            out.append((make(symbol, prices[symbol], when, size, list(conditions), n), tick))
    return out


def frames(trades: list, wrap: Callable[[list], Any], size: int = 7) -> list[Send]:
    return [Send(wrap(trades[i : i + size])) for i in range(0, len(trades), size)]


async def produce_from(server: Any, args: list[str], env: dict, count: int) -> tuple[int, str]:
    """``stockapp produce ... --count count`` against ``server`` (running): exit code, output."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "stockapp"),
        "produce",
        *args,
        "--count",
        str(count),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if proc.returncode is None:  # never leave the source running
            proc.kill()
            await proc.wait()
    assert server.script_errors == []
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


def check_candles(stack, env: dict, ticks: list[Tick]) -> None:
    """A worker reads the topic; its candles equal the oracle's, and every trade is stored
    once as a raw quote."""
    late = late_intervals(ticks, INTERVALS, GRACE_MS, TZ)
    expected = {}
    for interval in INTERVALS:
        accepted = [t for t, lt in zip(ticks, late, strict=True) if interval not in lt]
        for _, row in expected_candles(accepted, interval, TZ, DEFAULT_INDICATORS).iterrows():
            expected[(row["symbol"], interval, int(row["start"]))] = row
    assert any(lt for lt in late) and any(t.volume_only for t in ticks)
    worker = Worker(env, Path(env["STOCKAPP_DATA_DIR"]).parent / "worker.log")
    cluster, session = connect(stack, keyspace=env["STOCKAPP_CASSANDRA_KEYSPACE"])
    try:
        worker.start()
        wait_for(
            lambda: (
                session.execute("SELECT count(*) FROM candles", timeout=60).one()[0]
                >= len(expected)
            ),
            300,
            "all candles closed",
            worker,
        )
        stored = stored_rows(session)
        quotes = session.execute("SELECT count(*) FROM quotes", timeout=60).one()[0]
    finally:
        worker.stop()
        cluster.shutdown()
    assert quotes == len(ticks)
    assert set(stored) == set(expected)
    for key, row in expected.items():
        assert_candle_row(stored[key], row, key)
        for name in OUTPUTS:
            assert_close_or_null(getattr(stored[key], name), row[name], (key, name))


def summary_counts(text: str) -> dict[str, int]:
    line = next(x for x in text.splitlines() if x.startswith("produce: sent "))
    found = re.search(r"(\d+) published .*?(\d+) not counted .*?(\d+) repeats", line)
    assert found, line
    return {"published": int(found[1]), "not_counted": int(found[2]), "repeats": int(found[3])}


FINNHUB_CODES = [
    ((["1"]), "all"),
    ((["1", "12"]), "volume"),  # odd lot
    ((["1", "8", "24"]), "all"),  # sweep, Form T
    ((["3"]), "volume"),  # average price
    ((["16"]), "none"),  # official close
]
FINNHUB_WEIGHTS = [(c, w) for c, w in zip(FINNHUB_CODES, [70, 15, 8, 4, 3], strict=True)]


def test_finnhub_session_becomes_candles_equal_to_pandas(stack, feed_env):
    from tests.fake_finnhub import FakeFinnhub, trade, trades_message

    trades = session_trades(lambda s, p, t, v, c, n: trade(s, p, t, v, c), FINNHUB_WEIGHTS)
    messages = [m for m, _ in trades]
    cut = len(messages) * 3 // 5
    wrap = lambda batch: trades_message(*batch)  # noqa: E731
    scripts = [
        [AwaitSubscribed(2), *frames(messages[:cut], wrap), Send("{oops"), Drop()],
        # The service sends the last trades before the drop again: repeats.
        [AwaitSubscribed(2), *frames(messages[cut - 12 :], wrap)],
    ]
    ticks = [t for _, t in trades if t is not None]
    env = {
        **feed_env,
        "FINNHUB_API_KEY": "test-token",
        "STOCKAPP_FEED_BACKOFF_MAX_SECONDS": "1",
    }
    server = FakeFinnhub(scripts=scripts)

    async def go() -> tuple[int, str]:
        async with server:
            env["STOCKAPP_FINNHUB_WS_URL"] = server.url
            args = ["--source", "finnhub", "--symbols", ",".join(SYMBOLS)]
            return await produce_from(server, args, env, len(ticks))

    code, text = asyncio.run(go())
    assert code == 0, text
    assert "test-token" not in text
    repeated = sum(1 for _, t in trades[cut - 12 : cut] if t is not None)
    assert summary_counts(text) == {
        "published": len(ticks),
        "not_counted": sum(1 for _, t in trades if t is None)
        + sum(1 for _, t in trades[cut - 12 : cut] if t is None),
        "repeats": repeated,
    }
    assert f"sent {len(ticks)} quotes" in text
    check_candles(stack, env, ticks)


ALPACA_CODES = [
    (["@"], "all"),
    (["@", "I"], "volume"),  # odd lot
    (["@", "F", "T"], "all"),  # sweep, extended hours
    (["@", "Z"], "volume"),  # out of sequence
    (["M"], "none"),  # official close
]
ALPACA_WEIGHTS = [(c, w) for c, w in zip(ALPACA_CODES, [70, 15, 8, 4, 3], strict=True)]


def rfc3339_ns(ms: int, extra_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}{extra_ns:06d}Z"


def test_alpaca_session_becomes_candles_equal_to_pandas_and_a_bad_key_stops(stack, feed_env):
    from tests.fake_alpaca import FakeAlpaca, trade

    def make(symbol, price, ts, size, conditions, n):
        return trade(symbol, price, int(size), rfc3339_ns(ts, n % 997), n, conditions)

    trades = session_trades(make, ALPACA_WEIGHTS)
    messages = [m for m, _ in trades]
    # Identical trades have their own ids at Alpaca.
    assert len({m["i"] for m in messages}) == len(messages)
    cut = len(messages) * 3 // 5
    scripts = [
        [AwaitSubscribed(2), *frames(messages[:cut], list), Drop()],
        [AwaitSubscribed(2), *frames(messages[cut - 12 :], list)],
    ]
    ticks = [t for _, t in trades if t is not None]
    env = {
        **feed_env,
        "APCA_API_KEY_ID": "test-key",
        "APCA_API_SECRET_KEY": "test-secret",
        "STOCKAPP_FEED_BACKOFF_MAX_SECONDS": "1",
    }
    server = FakeAlpaca(scripts=scripts)

    async def go() -> tuple[tuple[int, str], tuple[int, str]]:
        async with server:
            env["STOCKAPP_ALPACA_WS_URL"] = server.stream_url
            args = ["--source", "alpaca", "--symbols", ",".join(SYMBOLS)]
            good = await produce_from(server, args, env, len(ticks))
            bad = await produce_from(server, args, {**env, "APCA_API_SECRET_KEY": "WRONGSECRET"}, 1)
            return good, bad

    (code, text), (bad_code, bad_text) = asyncio.run(go())
    assert code == 0, text
    assert "test-secret" not in text
    assert summary_counts(text)["repeats"] == sum(
        1 for _, t in trades[cut - 12 : cut] if t is not None
    )
    assert [c.authenticated for c in server.connections[:2]] == [True, True]
    assert bad_code == 1 and "error 402: auth failed" in bad_text, bad_text
    assert "WRONGSECRET" not in bad_text
    check_candles(stack, env, ticks)


def test_alpaca_backfill_pages_through_the_history(stack, feed_env):
    from tests.fake_alpaca import FakeAlpaca, bar

    rng = random.Random(3)
    history: dict[str, list[dict]] = {}
    bars: list[OhlcBar] = []
    for symbol in SYMBOLS:
        price = 100.0
        for minute in range(180):
            start = T0 + minute * 60_000
            o = price
            c = round(o * (1 + rng.gauss(0, 0.002)), 2)
            h, lo = max(o, c) + 0.05, min(o, c) - 0.05
            v = rng.randint(100, 5000)
            stamp = dt.datetime.fromtimestamp(start / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            history.setdefault(symbol, []).append(bar(symbol, stamp, o, h, lo, c, v))
            bars.append(OhlcBar(symbol, start, o, h, lo, c, float(v)))
            price = c
    server = FakeAlpaca(bars=history, page_size=100, rate_limit_every=3)
    env = {**feed_env, "APCA_API_KEY_ID": "test-key", "APCA_API_SECRET_KEY": "test-secret"}

    async def go() -> Any:
        async with server:
            env["STOCKAPP_ALPACA_DATA_URL"] = server.data_url
            return await asyncio.to_thread(
                run,
                [
                    str(BIN / "stockapp"),
                    "backfill",
                    "--source",
                    "alpaca",
                    "--symbols",
                    ",".join(SYMBOLS),
                    "--from",
                    str(T0),
                    "--to",
                    str(T0 + 180 * 60_000),
                ],
                env={**os.environ, **env},
            )

    result = asyncio.run(go())
    assert result.returncode == 0, result.stderr
    assert "rate limited" in result.stderr  # every third request answered 429, then waited for
    assert "test-secret" not in result.stdout + result.stderr
    assert len([r for r in server.rest_requests if r.get("status", 200) == 200]) >= 4
    last_end = T0 + 180 * 60_000
    cluster, session = connect(stack, keyspace=env["STOCKAPP_CASSANDRA_KEYSPACE"])
    try:
        stored = stored_rows(session)
    finally:
        cluster.shutdown()
    expected = {}
    for interval in INTERVALS:
        frame = expected_bar_candles(bars, interval, TZ)
        for _, row in frame.iterrows():
            start = int(row["start"])
            end = start + {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}.get(
                interval, 10**15
            )
            if end <= last_end - GRACE_MS:  # candles still forming at --to live in the seed
                expected[(row["symbol"], interval, start)] = row
    assert set(stored) == set(expected)
    for key, row in expected.items():
        assert_candle_row(stored[key], row, key)


def test_ctrl_c_flushes_a_live_feed_and_prints_its_summary(stack, feed_env):
    from tests.fake_finnhub import FakeFinnhub, trade, trades_message

    trades = [trade("AAPL", 100.0 + i / 10, T0 + i * 1000, 5, ["1"]) for i in range(30)]
    server = FakeFinnhub(scripts=[[AwaitSubscribed(1), Send(trades_message(*trades))]])
    env = {**os.environ, **feed_env, "FINNHUB_API_KEY": "test-token"}

    async def go() -> tuple[int, str]:
        async with server:
            env["STOCKAPP_FINNHUB_WS_URL"] = server.url
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "stockapp"),
                "produce",
                "--source",
                "finnhub",
                "--symbols",
                "AAPL",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                connection = await server.wait_connections(1, timeout=60)
                while not any('"trade"' in frame for frame in connection.sent):
                    await asyncio.sleep(0.05)
                await asyncio.sleep(2)
                proc.send_signal(signal.SIGINT)
                out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode is not None
            return proc.returncode, (out + err).decode()

    code, text = asyncio.run(go())
    assert code == 0, text
    assert "sent 30 quotes (AAPL 30); 0 failed" in text, text
    assert "finnhub: 30 trades read, 30 published" in text, text
