"""The web API, live push and the browser UI against real workers on the real stack.

One worker replays a deterministic stream (its candles are compared with the pandas/ta oracle,
history from Cassandra and the forming candle from the worker), a simulator adds a live symbol
for the browser, and a second worker joins at the end to check that either port answers for
every symbol.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import random
import socket
import subprocess
import time

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from tests.helpers import BIN, REPO, free_port, http_json
from tests.integration.workers import Worker, produce, wait_for, with_indicators, worker_env
from tests.oracle import Tick, expected_candles
from tests.streams import generate_ticks

TZ = "America/New_York"
INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
SYMBOLS = ["WA", "WB", "WC", "WD"]
START_MS = 1_767_621_600_000  # 2026-01-05 14:00 UTC
LIVE = "LIVE"  # the simulator's symbol, first in the UI's list
# The worker's STOCKAPP_INDICATORS (not the default): the API, the chart's toggles and the
# rule editor follow it.
INDICATORS = "sma:10,sma:30,ema:9,rsi:14,macd:8:21:5,bb:20:2,bb:10:1.5,vwap"
OUTPUTS = [
    "sma_10",
    "sma_30",
    "ema_9",
    "rsi_14",
    "macd_8_21_5",
    "macd_signal_8_21_5",
    "macd_hist_8_21_5",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_upper_10_1p5",
    "bb_middle_10_1p5",
    "bb_lower_10_1p5",
    "vwap",
]


def build_ticks() -> list[Tick]:
    ticks = generate_ticks(
        8000, SYMBOLS, seed=5, start_ms=START_MS, mean_gap_ms=2000, jitter_ms=1000
    )
    # One last tick per symbol 30 s into a fresh minute: exactly one forming candle per interval
    # (the one before it has passed the grace period).
    for symbol in SYMBOLS:
        last = max(t.ts for t in ticks if t.symbol == symbol)
        ticks.append(Tick(symbol, (last // 60_000 + 1) * 60_000 + 30_000, 100.0, 10.0))
    return ticks


def get(port: int, path: str, origin: str | None = None) -> tuple[int, dict, dict]:
    return http_json(port, path, headers={"Origin": origin} if origin else {})


@pytest.fixture(scope="module")
def web(stack, tmp_path_factory):
    unique = os.urandom(5).hex()
    tmp = tmp_path_factory.mktemp("web")
    keyspace = f"stockapp_web_{unique}"
    migrate(with_indicators(stack, INDICATORS), keyspace=keyspace)
    env = worker_env(
        "web",
        unique,
        keyspace,
        tmp / "data1",
        STOCKAPP_IDLE_CLOSE_SECONDS="3600",  # the replay's last candles stay forming
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_MARKET_TIMEZONE=TZ,
        STOCKAPP_TABLE_STORE="memory",
        STOCKAPP_LOG_LEVEL="INFO",
        STOCKAPP_LIVE_SEND_TIMEOUT_SECONDS="2",  # the slow-client test waits this long
        # The slow-client test's 50 clients stand for 50 users; here they share 127.0.0.1.
        STOCKAPP_LIVE_MAX_PER_CLIENT="100",
        STOCKAPP_INDICATORS=INDICATORS,
        # The two-worker test's forwarding and live relay are signed with it.
        STOCKAPP_WORKER_SECRET="web-test-worker-secret-" + unique,
    )
    ticks = build_ticks()
    records = [
        (
            t.symbol.encode(),
            orjson.dumps({"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}),
        )
        for t in ticks
    ]
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
    worker = Worker(env, tmp / "worker1.log")
    live = None
    workers = [worker]
    try:
        worker.start()
        wait_for(lambda: worker.stats().get("quotes", 0) >= len(ticks), 300, "the replay", worker)
        live = subprocess.Popen(
            [str(BIN / "stockapp"), "produce", "--symbols", LIVE, "--rate", "20"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "live.log").open("w"),
        )
        wait_for(
            lambda: get(int(env["STOCKAPP_WEB_PORT"]), f"/api/quote/{LIVE}")[0] == 200,
            120,
            "the live symbol",
            worker,
        )
        yield {
            "env": env,
            "port": int(env["STOCKAPP_WEB_PORT"]),
            "ticks": ticks,
            "workers": workers,
            "tmp": tmp,
            "bootstrap": stack.kafka_bootstrap[0],
        }
    finally:
        if live is not None:
            live.terminate()
            live.wait(timeout=60)
        for w in workers:
            w.stop()
        cluster, session = connect(stack, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def oracle(ticks: list[Tick], symbol: str, interval: str) -> list[dict]:
    rows = expected_candles([t for t in ticks if t.symbol == symbol], interval, TZ, INDICATORS)
    return [
        {
            "t": int(r["start"]) // 1000,
            "o": r["open"],
            "h": r["high"],
            "l": r["low"],
            "c": r["close"],
            "v": r["volume"],
            "indicators": {n: r[n] for n in OUTPUTS},
        }
        for _, r in rows.iterrows()
    ]


def assert_candles_equal(got: list[dict], want: list[dict], where: object) -> None:
    assert [c["t"] for c in got] == [c["t"] for c in want], where
    for g, w in zip(got, want, strict=True):
        assert (g["o"], g["h"], g["l"], g["c"], g["v"]) == (
            w["o"],
            w["h"],
            w["l"],
            w["c"],
            w["v"],
        ), (where, g["t"])
        assert list(g["indicators"]) == OUTPUTS
        for name in OUTPUTS:
            theirs, ours = w["indicators"][name], g["indicators"][name]
            if math.isnan(theirs):
                assert ours is None, (where, g["t"], name)
            else:
                assert ours is not None and math.isclose(
                    ours, theirs, rel_tol=1e-9, abs_tol=1e-9
                ), (
                    where,
                    g["t"],
                    name,
                    ours,
                    theirs,
                )


def test_candles_are_history_plus_the_forming_candle_and_equal_the_oracle(web):
    for symbol in SYMBOLS:
        for interval in INTERVALS:
            status, body, _ = get(
                web["port"], f"/api/candles/{symbol}?interval={interval}&limit=5000"
            )
            assert status == 200, body
            assert (body["symbol"], body["interval"]) == (symbol, interval)
            candles = body["candles"]
            assert_candles_equal(
                candles, oracle(web["ticks"], symbol, interval), (symbol, interval)
            )
            # History is closed; the last candle is the one forming in the worker.
            assert [c["closed"] for c in candles] == [True] * (len(candles) - 1) + [False]


def test_default_limit_and_ranges_slice_the_same_series(web):
    port = web["port"]
    full = get(port, "/api/candles/WA?interval=1m&limit=5000")[1]["candles"]
    assert len(full) > 60  # enough for sma_30 to warm up
    assert get(port, "/api/candles/wa?interval=1m")[1]["candles"] == full[-500:]
    assert get(port, "/api/candles/WA?interval=1m&limit=5")[1]["candles"] == full[-5:]
    t = [c["t"] for c in full]
    # [start, end): the latest `limit` of the range, ascending; ISO-8601 works too.
    body = get(port, f"/api/candles/WA?interval=1m&start={t[10]}&end={t[20]}")[1]
    assert body["candles"] == full[10:20]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t[20]))
    assert get(port, f"/api/candles/WA?interval=1m&end={iso}&limit=3")[1]["candles"] == full[17:20]
    assert get(port, f"/api/candles/WA?interval=1m&start={t[-1] + 60}")[1]["candles"] == []
    # The first read filled the worker's candle cache; the others were answered from it, with
    # what the first read got from Cassandra (the equalities above).
    cache = get(port, "/stats")[1]["candle_cache"]
    assert cache["hits"] >= 5 and cache["spans"] >= 1 and cache["bytes"] > 0, cache


def test_symbols_and_latest_quote(web):
    status, body, _ = get(web["port"], "/api/symbols")
    assert status == 200
    listed = {s["symbol"]: s for s in body["symbols"]}
    assert set(SYMBOLS) | {LIVE} <= set(listed)
    for symbol in SYMBOLS:
        latest = max((t for t in web["ticks"] if t.symbol == symbol), key=lambda t: t.ts)
        assert listed[symbol]["last_price"] == latest.price
        assert listed[symbol]["last_time"] == latest.ts // 1000
        status, quote, _ = get(web["port"], f"/api/quote/{symbol}")
        assert status == 200
        assert (quote["symbol"], quote["price"], quote["time"], quote["volume"]) == (
            symbol,
            latest.price,
            latest.ts / 1000,
            latest.volume,
        )


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/candles/WA?interval=2m", 400, "interval"),
        ("/api/candles/WA?start=yesterday", 400, "neither epoch seconds nor ISO-8601"),
        ("/api/candles/WA?start=200&end=100", 400, "start must be before end"),
        ("/api/candles/WA?limit=0", 400, "limit must be between"),
        ("/api/candles/WA?limit=100000", 400, "limit must be between"),
        ("/api/candles/WA%20X", 400, "is not 1-15 characters"),
        ("/api/candles/WA'--", 400, "is not 1-15 characters"),
        ("/api/quote/%24%24%24", 400, "is not 1-15 characters"),
        ("/api/candles/NOPE", 404, "unknown symbol NOPE"),
        ("/api/quote/NOPE", 404, "unknown symbol NOPE"),
    ],
)
def test_bad_requests_get_json_errors(web, path, status, fragment):
    got, body, headers = get(web["port"], path)
    assert got == status
    assert fragment in body["error"]
    assert headers["Content-Type"].startswith("application/json")


def test_cors_is_same_origin_by_default(web):
    _, _, headers = get(web["port"], "/api/symbols", origin="http://elsewhere.example")
    assert "Access-Control-Allow-Origin" not in headers


def test_health_ready_and_openapi(web):
    assert get(web["port"], "/health")[0] == 200
    status, body, _ = get(web["port"], "/ready")
    assert status == 200 and body["checks"] == {
        "tables_recovered": True,
        "batches": True,
        "kafka": True,
        "cassandra": True,
    }
    status, spec, _ = get(web["port"], "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert {"/api/symbols", "/api/candles/{symbol}", "/api/quote/{symbol}"} <= set(spec["paths"])
    status, stats, _ = get(web["port"], "/stats")
    assert status == 200 and stats["symbols_loaded"] >= stats["forming"]["count"]
    assert stats["forming"]["sample"] == sorted(stats["forming"]["sample"])[:20]
    status, meta, _ = get(web["port"], "/api/meta")
    assert status == 200 and meta["intervals"] == ["1m", "5m", "15m", "1h", "1d"]
    outputs = [name for indicator in meta["indicators"] for name in indicator["outputs"]]
    assert outputs == OUTPUTS
    indicators = spec["components"]["schemas"]["Candle"]["properties"]["indicators"]
    assert indicators["required"] == OUTPUTS


def test_rules_follow_the_configured_indicators(web):
    """This worker's set has no sma_20/sma_50: a rule naming them is refused, one naming its
    own outputs is taken, and the built-in crosses of sma_20/sma_50 are not in force."""
    port = web["port"]
    rule = {"name": "web_cross", "kind": "crosses_above", "interval": "1m"}
    headers = {"Content-Type": "application/json"}
    status, body, _ = http_json(
        port,
        "/api/rules",
        "POST",
        orjson.dumps({**rule, "left": "close", "right": "sma_20"}),
        headers,
    )
    assert status == 400 and body["error"].startswith("right: 'sma_20' is not a series"), body
    assert "bb_upper_10_1p5" in body["error"]  # the list it gives is this worker's
    good = {**rule, "left": "sma_10", "right": "bb_upper_10_1p5"}
    status, body, _ = http_json(port, "/api/rules", "POST", orjson.dumps(good), headers)
    assert status == 201 and body["right"] == "bb_upper_10_1p5", body
    names = {r["name"] for r in get(port, "/api/rules")[1]["rules"]}
    assert "web_cross" in names and "breakout_20_up" in names
    assert not names & {"golden_cross", "death_cross", "macd_cross_up", "macd_cross_down"}
    assert http_json(port, "/api/rules/web_cross", "DELETE")[0] == 200
    # A built-in rule's name stays reserved while the rule is out of force.
    clash = orjson.dumps({**good, "name": "golden_cross"})
    status, body, _ = http_json(port, "/api/rules", "POST", clash, headers)
    assert status == 409 and "built-in" in body["error"], body


def test_live_push_moves_the_forming_candle(web):
    """A tick for the forming window reaches a WebSocket client as the updated candle."""
    port, env = web["port"], web["env"]
    last = max((t for t in web["ticks"] if t.symbol == "WB"), key=lambda t: t.ts)
    tick = {"symbol": "WB", "ts": last.ts + 1000, "price": 123.25, "volume": 7.0}

    async def run() -> tuple[dict, float]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/api/live/WB?interval=1m") as ws:
                await asyncio.sleep(0.5)  # subscribed before the tick is produced
                sent = time.time()
                await produce(
                    web["bootstrap"], env["STOCKAPP_TOPIC_QUOTES"], [(b"WB", orjson.dumps(tick))]
                )
                message = await asyncio.wait_for(ws.receive_json(), 30)
                return message, (time.time() - sent) * 1000

    message, elapsed_ms = asyncio.run(run())
    candle = message["candle"]
    assert (message["type"], message["symbol"], message["interval"]) == ("candle", "WB", "1m")
    assert candle["t"] == (tick["ts"] // 60_000) * 60
    assert candle["c"] == 123.25 and candle["closed"] is False
    assert candle["v"] == 10.0 + 7.0  # the closing tick of the replay, and this one
    # Not a speed assertion (that is `make bench`): the figure goes to the test log.
    print(f"live push: tick produced -> WebSocket message in {elapsed_ms:.0f} ms")
    web["ticks"].append(Tick(tick["symbol"], tick["ts"], tick["price"], tick["volume"]))


def stalled_client(port: int, path: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads, with a receive
    buffer small enough that the server's sends back up within a few hundred messages."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: not one byte of the stream past the headers
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def cut_off(sock: socket.socket) -> bool:
    """Whether the server ended the connection: reads what it had sent, up to the end."""
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_many_stalled_live_clients_are_dropped_and_a_reading_one_gets_every_candle(web):
    """Fifty clients stop reading while a catching-up symbol closes thousands of candles:
    each is disconnected (after STOCKAPP_LIVE_SEND_TIMEOUT_SECONDS, 2 s here), the worker's
    memory stays bounded, and a client that reads receives every closed candle, equal to the
    oracle, while they are dropped."""
    port, env, worker = web["port"], web["env"], web["workers"][0]
    symbol, n, chunk = "SLOW", 3000, 50
    rng = random.Random(11)
    base = 1_770_000_000_000  # 2026-02-02, before the worker's clock
    price, ticks = 50.0, []
    for i in range(n):
        price = round(max(1.0, price + rng.uniform(-0.5, 0.5)), 2)
        ticks.append(Tick(symbol, base + i * 60_000 + 1000, price, float(rng.randint(1, 50))))
    # Each tick closes the 1m candle before the previous one (grace 5 s): the last two form.
    want = oracle(ticks, symbol, "1m")[: n - 2]
    path = f"/api/live/{symbol}?interval=1m"
    dropped_before = worker.stats(full=True)["live"]["dropped"]
    rss_before = rss_bytes(worker.proc.pid)
    stalled = [stalled_client(port, path) for _ in range(50)]

    async def run() -> list[dict]:
        closed: list[dict] = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}{path}") as ws:

                async def read() -> None:
                    while len(closed) < len(want):
                        message = await ws.receive_json()
                        if message["candle"]["closed"]:
                            closed.append(message["candle"])

                reading = asyncio.ensure_future(read())
                live = lambda: worker.stats(full=True)["live"]  # noqa: E731
                wait_for(lambda: live()["clients"] == 51, 30, "the clients to subscribe", worker)
                producer = AIOKafkaProducer(bootstrap_servers=web["bootstrap"], linger_ms=5)
                await producer.start()
                try:
                    # In chunks, as a worker catching up takes them: many changes, each with
                    # tens of closed candles.
                    for start in range(0, n, chunk):
                        for t in ticks[start : start + chunk]:
                            value = {"symbol": symbol, "ts": t.ts, "price": t.price}
                            value["volume"] = t.volume
                            await producer.send(
                                env["STOCKAPP_TOPIC_QUOTES"], orjson.dumps(value), symbol.encode()
                            )
                        await producer.flush()
                        await asyncio.sleep(0.1)
                finally:
                    await producer.stop()
                await asyncio.wait_for(reading, 120)
        return closed

    closed = asyncio.run(run())
    assert_candles_equal(closed, want, "the reading client")
    wait_for(
        lambda: worker.stats(full=True)["live"]["dropped"] - dropped_before >= 50,
        30,
        "the stalled clients to be dropped",
        worker,
    )
    assert worker.stats(full=True)["live"]["dropped"] - dropped_before == 50
    assert all(cut_off(sock) for sock in stalled)
    for sock in stalled:
        sock.close()
    wait_for(
        lambda: worker.stats(full=True)["live"]["clients"] == 0, 30, "the clients to go", worker
    )
    # Bounded: the stalled clients' backlog is not held (3,000 messages to each of 50 would be
    # ~70 MB of JSON); what the worker grew by is its own working set for a new symbol.
    grown = rss_bytes(worker.proc.pid) - rss_before
    print(f"live: 50 stalled clients dropped; worker RSS grew by {grown / 2**20:.1f} MiB")
    assert grown < 48 * 2**20, grown
    web["ticks"].extend(ticks)


def test_schema_driven_api_check_finds_no_server_error(web):
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"http://127.0.0.1:{web['port']}/api/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance",
            "--include-path-regex",
            "^/(api/(symbols|candles|quote|rules|signals$)|health|ready)",
            "--max-examples",
            "60",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


ARTIFACTS = REPO / "artifacts"


def browser_script(web, script: str, **env: str) -> subprocess.Popen:
    """A frontend/e2e script against the module's worker (its output piped, text). A test
    that runs one is marked ``browser``: it runs in make test's last lane, after Chromium is
    installed."""
    return subprocess.Popen(
        ["node", f"e2e/{script}"],
        cwd=REPO / "frontend",
        env={
            **os.environ,
            "STOCKAPP_URL": f"http://127.0.0.1:{web['port']}",
            "STOCKAPP_ARTIFACTS": str(ARTIFACTS),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(script: subprocess.Popen, head: str = "", timeout: float = 300) -> None:
    """Waits for a browser script; fails with its output unless it passed."""
    try:
        out, err = script.communicate(timeout=timeout)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert script.returncode == 0, (head + out)[-3000:] + err[-3000:]


@pytest.mark.browser
def test_browser_shows_a_live_chart(web):
    finished(browser_script(web, "chart.e2e.mjs", STOCKAPP_E2E_SYMBOL="WA"))
    assert (ARTIFACTS / "chart.png").stat().st_size > 10_000


@pytest.mark.browser
def test_browser_rules_signals_and_markers(web):
    """Through the UI: a bad rule shows its error, a good one is created; then a crafted
    stream crosses its level and the browser shows a marker at the candle and a row in the
    live signals panel; the rule is deleted again."""
    symbol = "WD"
    last = max(t.ts for t in web["ticks"] if t.symbol == symbol)
    minute = (last // 60_000 + 1) * 60_000
    # Closes 1 then 1000 (crossing 500 up), and a tick that closes the 1000 candle.
    ticks = [
        Tick(symbol, minute + 10_000, 1.0, 5.0),
        Tick(symbol, minute + 70_000, 1000.0, 5.0),
        Tick(symbol, minute + 130_000, 1000.0, 5.0),
    ]
    script = browser_script(
        web, "signals.e2e.mjs", STOCKAPP_E2E_SYMBOL=symbol, STOCKAPP_E2E_SERIES=",".join(OUTPUTS)
    )
    said = ""
    for line in script.stdout:  # the script says READY once the rule is created
        said += line
        if line.strip() == "READY":
            records = [
                (
                    symbol.encode(),
                    orjson.dumps(
                        {"symbol": symbol, "ts": t.ts, "price": t.price, "volume": t.volume}
                    ),
                )
                for t in ticks
            ]
            asyncio.run(produce(web["bootstrap"], web["env"]["STOCKAPP_TOPIC_QUOTES"], records))
            web["ticks"].extend(ticks)
            break
    finished(script, said, timeout=240)
    assert "READY" in said
    assert (ARTIFACTS / "signals.png").stat().st_size > 10_000
    assert (ARTIFACTS / "rule-error.png").stat().st_size > 10_000


@pytest.mark.browser
def test_browser_watchlist_is_live_sortable_and_opens_charts(web):
    script = browser_script(
        web, "watchlist.e2e.mjs", STOCKAPP_E2E_LIVE=LIVE, STOCKAPP_E2E_SYMBOL="WB"
    )
    finished(script)
    assert (ARTIFACTS / "watchlist.png").stat().st_size > 10_000


def test_two_workers_each_answer_every_symbol(web):
    """A second worker takes over some partitions; both ports give the same answers, the
    forming candle included, and the live feed is relayed from the owner."""
    env2 = {
        **web["env"],
        "STOCKAPP_WEB_PORT": str(free_port()),
        "STOCKAPP_DATA_DIR": str(web["tmp"] / "data2"),
    }
    second = Worker(env2, web["tmp"] / "worker2.log")
    web["workers"].append(second)
    second.start()
    ports = [web["port"], int(env2["STOCKAPP_WEB_PORT"])]

    def both_own_partitions() -> bool:
        # /stats "ends" has a key per quotes partition assigned to the worker.
        assigned = [set(w.stats(full=True).get("ends", {})) for w in web["workers"]]
        return (
            all(assigned)
            and not assigned[0] & assigned[1]
            and get(ports[1], "/ready")[0] == 200
            and get(ports[0], "/ready")[0] == 200
        )

    wait_for(both_own_partitions, 180, "the second worker to take partitions", second)
    answered_by = set()
    for symbol in SYMBOLS:
        want = oracle(web["ticks"], symbol, "5m")
        owners = set()
        for port in ports:
            status, body, headers = get(port, f"/api/candles/{symbol}?interval=5m&limit=5000")
            assert status == 200, body
            owners.add(headers["X-Stockapp-Worker"])
            candles = body["candles"]
            assert_candles_equal(candles, want, (symbol, port))
            assert candles[-1]["closed"] is False, (symbol, port)
        assert len(owners) == 1, owners  # both ports: the answer of the symbol's owner
        answered_by |= owners
    assert len(answered_by) == 2  # the symbols are spread over both workers

    # Live push through either port.
    async def first_message(port: int) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                f"http://127.0.0.1:{port}/api/live/{LIVE}?interval=1m"
            ) as ws:
                return await asyncio.wait_for(ws.receive_json(), 30)

    for port in ports:
        message = asyncio.run(first_message(port))
        assert message["symbol"] == LIVE and message["candle"]["closed"] in (True, False)
    # Every forwarded request and relayed feed carried a signature the owner accepted.
    for port in ports:
        assert get(port, "/stats")[1]["refused"].get("routed", 0) == 0
