"""Signals on the real stack: rules created through one worker's API are in force on another
within the refresh interval; a crafted stream fires them, and each firing is in Cassandra (by
symbol and by day), on the keyed signals topic, pushed on both WebSockets and POSTed to a
webhook that fails at first (retried) or refuses (dead-lettered with the reason).

The stream-vs-oracle comparison of every signal through crashes and rebalances is in
test_pipeline.py; this module is the rules API, the live paths and the webhook."""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.request

import aiohttp
import orjson
import pytest
from aiohttp import web as aioweb

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from tests.helpers import documented_verify, free_port, http_json, read_topic, read_topic_until
from tests.integration.workers import Worker, produce, wait_for, worker_env

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC
MINUTE = 60_000


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 401 to a POST whose signature does not verify
    (with docs/signals.md's snippet), 503 to the first POST of each signal (the notifier must
    retry), 422 to every signal of the rule ``refused`` (dead-lettered), and 200 otherwise.
    Runs its own loop in a thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret = os.urandom(16).hex()
        self.token = os.urandom(8).hex()  # in the URL's query: never in the worker's log
        self.url = f"http://127.0.0.1:{self.port}/hook?token={self.token}"
        self.posts: list[tuple[str, dict]] = []  # (Idempotency-Key, body)
        self.unverified = 0
        self.verify = documented_verify()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    async def _hook(self, request: aioweb.Request) -> aioweb.Response:
        key = request.headers.get("Idempotency-Key", "")
        raw = await request.read()
        signed = request.headers.get("X-Stockapp-Signature", "")
        if request.query.get("token") != self.token or not self.verify(self.secret, signed, raw):
            self.unverified += 1
            return aioweb.Response(status=401)
        body = orjson.loads(raw)
        first = all(k != key for k, _ in self.posts)
        self.posts.append((key, body))
        if body["rule"] == "refused":
            return aioweb.Response(status=422, text="no thanks")
        return aioweb.Response(status=503 if first else 200)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = aioweb.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = aioweb.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = aioweb.TCPSite(self.runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def call(port: int, method: str, path: str, body=None, content_type="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    headers = {} if data is None else {"Content-Type": content_type}
    status, parsed, _ = http_json(port, path, method, data, headers)
    return status, parsed


@pytest.fixture(scope="module")
def signals(stack, tmp_path_factory):
    unique = os.urandom(5).hex()
    tmp = tmp_path_factory.mktemp("signals")
    keyspace = f"stockapp_sig_{unique}"
    migrate(stack, keyspace=keyspace)
    receiver = Receiver()
    receiver.start()
    common = dict(
        STOCKAPP_INTERVALS="1m,5m",
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_IDLE_CLOSE_SECONDS="3600",  # the stream's last candle stays forming
        STOCKAPP_TABLE_STORE="memory",
        STOCKAPP_RULES_REFRESH_SECONDS="1",
    )
    env = worker_env(
        "sig",
        unique,
        keyspace,
        tmp / "data1",
        STOCKAPP_SIGNAL_WEBHOOK_URL=receiver.url,
        STOCKAPP_SIGNAL_WEBHOOK_SECRET=receiver.secret,
        STOCKAPP_SIGNAL_WEBHOOK_ALLOW_HTTP="true",  # a receiver on loopback
        STOCKAPP_SIGNAL_WEBHOOK_TRIES="3",
        STOCKAPP_SIGNAL_WEBHOOK_TIMEOUT_SECONDS="2",
        **common,
    )
    # Another deployment's worker on the same keyspace (own app id and topics): its API
    # creates rules, the first worker must pick them up without a restart.
    other_env = worker_env("sigapi", unique, keyspace, tmp / "data2", **common)
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], []))
    worker = Worker(env, tmp / "worker.log")
    other = Worker(other_env, tmp / "other.log")
    try:
        worker.start()
        other.start()
        for w in (worker, other):
            port = int(w.env["STOCKAPP_WEB_PORT"])
            wait_for(lambda p=port: _answers(p), 120, "the API", w)
        yield {
            "env": env,
            "port": int(env["STOCKAPP_WEB_PORT"]),
            "other_port": int(other_env["STOCKAPP_WEB_PORT"]),
            "worker": worker,
            "receiver": receiver,
            "bootstrap": stack.kafka_bootstrap[0],
            "stack": stack,
        }
    finally:
        worker.stop()
        other.stop()
        receiver.stop()
        cluster, session = connect(stack, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def _answers(port: int) -> bool:
    try:
        return call(port, "GET", "/api/rules")[0] == 200
    except OSError:
        return False


OVER = {
    "name": "over_100",
    "kind": "crosses_above",
    "left": "close",
    "right": 100,
    "interval": "1m",
    "symbols": ["SA"],
}
REFUSED = {**OVER, "name": "refused", "kind": "crosses_below"}


def test_rules_api_validates_stores_and_refuses_clearly(signals):
    port = signals["other_port"]
    status, body = call(port, "POST", "/api/rules", OVER)
    assert status == 201 and body["name"] == "over_100" and body["builtin"] is False
    assert body["symbols"] == ["SA"] and body["right"] == 100.0
    assert call(port, "POST", "/api/rules", REFUSED)[0] == 201
    status, body = call(port, "POST", "/api/rules", OVER)
    assert status == 409 and "exists" in body["error"]
    status, body = call(port, "POST", "/api/rules", {**OVER, "name": "x", "left": "sma_21"})
    assert status == 400 and body["error"].startswith("left: 'sma_21' is not a series")
    status, body = call(port, "POST", "/api/rules", b"{not json")
    assert status == 400 and body["error"].startswith("not JSON")
    status, body = call(port, "POST", "/api/rules", OVER, content_type="text/plain")
    assert status == 415 and "application/json" in body["error"]
    status, body = call(port, "POST", "/api/rules", {**OVER, "name": "golden_cross"})
    assert status == 409 and "built-in" in body["error"]
    assert call(port, "DELETE", "/api/rules/golden_cross")[0] == 409
    assert call(port, "DELETE", "/api/rules/nothing_here")[0] == 404
    assert call(port, "GET", "/api/rules/nothing_here")[0] == 404
    status, body = call(port, "GET", "/api/rules/over_100")
    assert status == 200 and body["kind"] == "crosses_above"
    # A rule created and deleted again leaves nothing behind.
    assert call(port, "POST", "/api/rules", {**OVER, "name": "brief"})[0] == 201
    assert call(port, "DELETE", "/api/rules/brief") == (200, {"deleted": "brief"})
    names = {r["name"] for r in call(port, "GET", "/api/rules")[1]["rules"]}
    assert {"over_100", "refused", "golden_cross"} <= names and "brief" not in names


def tick(ts: int, price: float) -> tuple[bytes, bytes]:
    return b"SA", orjson.dumps({"symbol": "SA", "ts": ts, "price": price, "volume": 1.0})


# Closes per minute: 99, 101 (over_100), 98 (refused), 102 (over_100), 100.5; then a tick that
# closes the last of them. Each minute's tick is 10 s in: it closes the minute before.
CLOSES = [99.0, 101.0, 98.0, 102.0, 100.5]
FIRED = {
    ("over_100", T0 + MINUTE),
    ("refused", T0 + 2 * MINUTE),
    ("over_100", T0 + 3 * MINUTE),
}


def test_a_crafted_stream_fires_the_rules_everywhere(signals):
    env, port = signals["env"], signals["port"]
    worker = signals["worker"]
    # Created through the other worker: in force here within the refresh interval.
    wait_for(
        lambda: worker.stats(full=True).get("signals", {}).get("user_rules", 0) >= 2,
        30,
        "the users' rules on the processing worker",
        worker,
    )
    records = [tick(T0 + m * MINUTE + 10_000, price) for m, price in enumerate(CLOSES)]
    records.append(tick(T0 + len(CLOSES) * MINUTE + 10_000, 100.0))

    async def run() -> tuple[list, list]:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            async with (
                session.ws_connect(f"{base}/api/signals/live") as feed,
                session.ws_connect(f"{base}/api/live/SA?interval=1m") as chart,
            ):
                await asyncio.sleep(1.0)  # subscribed, the topic's tail started
                await produce(signals["bootstrap"], env["STOCKAPP_TOPIC_QUOTES"], records)
                fed: list = []
                charted: list = []

                async def read() -> None:
                    while len(fed) < len(FIRED):
                        fed.append(await feed.receive_json())
                    while len(charted) < len(FIRED):
                        message = await chart.receive_json()
                        if message["type"] == "signal":
                            charted.append(message)

                try:
                    await asyncio.wait_for(read(), 60)
                except TimeoutError:
                    pass  # the assertions below say what came
                return fed, charted

    fed, charted = asyncio.run(run())
    seen = (fed, charted, call(port, "GET", "/api/signals?symbol=SA"), worker.stats(full=True))
    assert {(m["signal"]["rule"], m["signal"]["start"]) for m in fed} == FIRED, seen
    assert {(m["signal"]["rule"], m["signal"]["start"]) for m in charted} == FIRED
    first = next(m["signal"] for m in fed if m["signal"]["start"] == T0 + MINUTE)
    assert first["values"] == {"close": 101.0, "level": 100.0}
    assert first["key"] == f"SA|1m|over_100|{T0 + MINUTE}"

    # Stored: by symbol and across symbols (by day), newest first.
    status, body = call(port, "GET", "/api/signals?symbol=SA")
    assert status == 200
    assert [(s["rule"], s["start"]) for s in body["signals"]] == sorted(FIRED, key=lambda f: -f[1])
    before = (T0 + 24 * 3_600_000) // 1000  # epoch seconds, as for candles
    status, body = call(port, "GET", f"/api/signals?rule=over_100&before={before}&limit=1")
    assert status == 200 and [(s["rule"], s["start"]) for s in body["signals"]] == [
        ("over_100", T0 + 3 * MINUTE)
    ]
    assert call(port, "GET", "/api/signals?limit=0")[0] == 400

    # On the topic, keyed by identity.
    published = asyncio.run(read_topic(signals["bootstrap"], env["STOCKAPP_TOPIC_SIGNALS"]))
    assert {m.key.decode() for m in published} == {f"SA|1m|{r}|{s}" for r, s in FIRED}

    # The webhook: delivered on the second try (the first got a 503); the refused rule's
    # signal dead-lettered after one try, with the reason.
    receiver = signals["receiver"]
    delivered = {f"SA|1m|over_100|{s}" for r, s in FIRED if r == "over_100"}

    def posted() -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, _ in receiver.posts:
            counts[key] = counts.get(key, 0) + 1
        return counts

    wait_for(lambda: all(posted().get(k) == 2 for k in delivered), 60, "the webhook", worker)
    refused_key = f"SA|1m|refused|{T0 + 2 * MINUTE}"
    assert posted()[refused_key] == 1
    # The dead letter is written after the refused POST it records.
    dead = asyncio.run(
        read_topic_until(signals["bootstrap"], env["STOCKAPP_TOPIC_SIGNALS_DLQ"], bool, 30)
    )
    assert [m.key.decode() for m in dead] == [refused_key]
    headers = dict(dead[0].headers)
    assert headers["stockapp.reason"] == b"webhook: HTTP 422"
    assert headers["stockapp.attempts"] == b"1"
    assert orjson.loads(dead[0].value)["key"] == refused_key
    # Every POST was signed, and the URL's token and the secret are nowhere in the log.
    assert receiver.unverified == 0
    log = signals["worker"].log.read_text()
    assert receiver.token not in log and receiver.secret not in log


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return response.read().decode()


def test_a_deleted_rule_stops_firing_without_a_restart(signals):
    env, port, worker = signals["env"], signals["port"], signals["worker"]
    assert 'stockapp_signals_total{rule="over_100"} 2.0' in metrics(port)
    assert call(signals["other_port"], "DELETE", "/api/rules/over_100")[0] == 200
    wait_for(
        lambda: worker.stats(full=True).get("signals", {}).get("user_rules", 0) == 1,
        30,
        "the deleted rule out of force",
        worker,
    )
    # Its series went with it, from /metrics and /stats: they are per rule in force.
    text = metrics(port)
    assert 'rule="over_100"' not in text and 'stockapp_signals_total{rule="refused"}' in text
    assert set(worker.stats(full=True)["signals"]["fired"]) == {"refused"}
    # Closes 100 (the last tick above), 98 (refused, still in force), 103: over_100 would fire.
    start = T0 + (len(CLOSES) + 1) * MINUTE
    records = [tick(start + 10_000, 98.0), tick(start + MINUTE + 10_000, 103.0)]
    records.append(tick(start + 2 * MINUTE + 10_000, 103.0))
    asyncio.run(produce(signals["bootstrap"], env["STOCKAPP_TOPIC_QUOTES"], records))

    def stored() -> set:
        return {
            (s["rule"], s["start"])
            for s in call(port, "GET", "/api/signals?symbol=SA")[1]["signals"]
        }

    wait_for(lambda: ("refused", start) in stored(), 60, "the stream to fire refused", worker)
    assert stored() == FIRED | {("refused", start)}
