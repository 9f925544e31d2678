"""A real worker against clients that do not play by the rules (issue 23): forged and expired
inter-worker signatures, handshakes racing past the live limits, bytes no browser sends,
writes with the viewers' token, preflights, and the page's headers. Every answer is a JSON
4xx, never a 5xx; the limits hold; and the worker's log has no traceback and no ERROR line.
Also: the settings that must stop a worker at start (a blank or short token, an exposed
address without one)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stockapp.db.migrate import migrate
from stockapp.web import routed
from stockapp.web.guard import make_ticket
from tests.helpers import BIN, http_json, wait_http
from tests.integration.workers import Worker, worker_env

PER_CLIENT = 3
ORIGIN = "http://dash.example"
SIGNAL = {
    "key": "HOST|1m|hostile_rule|1767621600000",
    "symbol": "HOST",
    "interval": "1m",
    "rule": "hostile_rule",
    "kind": "crosses_above",
    "start": 1767621600000,
    "end": 1767621660000,
    "values": {"sma_20": 10.5, "sma_50": 10.25},
    "provisional": False,
}


@pytest.fixture(scope="module")
def hostile(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    unique = os.urandom(5).hex()
    keyspace = f"stockapp_host_{unique}"
    migrate(stack, keyspace=keyspace)
    secrets = {
        "token": "viewer-" + os.urandom(12).hex(),
        "admin": "admin-" + os.urandom(12).hex(),
        "signing": "worker-" + os.urandom(16).hex(),
    }
    env = worker_env(
        "host",
        unique,
        keyspace,
        tmp / "data",
        STOCKAPP_API_TOKEN=secrets["token"],
        STOCKAPP_ADMIN_TOKEN=secrets["admin"],
        STOCKAPP_WORKER_SECRET=secrets["signing"],
        STOCKAPP_LIVE_MAX_PER_CLIENT=str(PER_CLIENT),
        STOCKAPP_CORS_ORIGINS=ORIGIN,
        # The rate limit applies to this test's own address, exempt by default.
        STOCKAPP_API_RATE_EXEMPT="192.0.2.1",
        STOCKAPP_API_RATE_PER_CLIENT="1",
        STOCKAPP_API_RATE_BURST="5",
        STOCKAPP_TABLE_STORE="memory",
        STOCKAPP_LOG_LEVEL="INFO",
    )
    worker = Worker(env, tmp / "worker.log")
    port = int(env["STOCKAPP_WEB_PORT"])
    try:
        worker.start()
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        yield {"port": port, "env": env, "worker": worker, "stack": stack, **secrets}
    finally:
        worker.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def live_stats(hostile: dict) -> dict:
    """The worker's /stats "live" (which needs the token, unlike WorkerProcess.stats)."""
    status, body, _ = http_json(hostile["port"], "/stats", headers=auth(hostile["token"]))
    assert status == 200, body
    return body["live"]


async def raw(port: int, request: bytes) -> tuple[int, dict]:
    """Send bytes as they are (no client library sends these); the status and JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = next(
        (
            int(line.split(":")[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    body = await reader.readexactly(length)
    writer.close()
    return int(head.split()[1]), orjson.loads(body) if body else {}


def request(path: str, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n"


def upgrade(*headers: bytes) -> tuple[bytes, ...]:
    return (
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        *headers,
    )


def test_bytes_no_browser_sends_are_refused_with_json(hostile):
    port, token = hostile["port"], hostile["token"]
    expiry = int(time.time()) + 10
    cases = [
        request("/api/symbols", b"Authorization: Bearer \xff"),
        request("/api/live/AAPL?interval=1m", *upgrade(b"Authorization: Bearer \xff\xfe")),
        request(f"/api/live/AAPL?interval=1m&ticket={expiry}.%C3%A9%C3%A9", *upgrade()),
        request(f"/api/signals/live?ticket={expiry}.%FF", *upgrade()),
        request("/api/live/AAPL?interval=1m", *upgrade(b"Origin: http://[", *_bearer(token))),
        request("/api/signals/live", *upgrade(b"Origin: http://[", *_bearer(token))),
        request("/api/symbols", b"Origin: http://[", *_bearer(token)),
        request("/api/live/AAPL?interval=1m", *_bearer(token)),  # not an Upgrade
    ]
    answers = [asyncio.run(raw(port, case)) for case in cases]
    assert [status for status, _ in answers] == [401, 401, 401, 401, 403, 403, 403, 400]
    assert all("error" in body for _, body in answers), answers


def _bearer(token: str) -> tuple[bytes, ...]:
    return (f"Authorization: Bearer {token}".encode(),)


def test_routed_requests_must_be_signed_by_a_worker(hostile):
    port, token, secret = hostile["port"], hostile["token"], hostile["signing"]
    path = "/api/symbols"

    def with_routed(value: str) -> int:
        headers = {**auth(token), routed.ROUTED_HEADER: value}
        status, body, _ = http_json(port, path, headers=headers, timeout=10)
        assert status < 500 and (status == 200 or "error" in body), (status, body)
        return status

    forged = routed.sign("not-the-worker-secret-at-all", "GET", path, time.time())
    expired = routed.sign(secret, "GET", path, time.time() - 300)
    elsewhere = routed.sign(secret, "GET", "/api/candles/AAPL", time.time())
    assert [with_routed(v) for v in ("1", forged, expired, elsewhere)] == [403] * 4
    # A signed request is not counted against the rate limit (a burst of 5, 1/s): twenty pass.
    time.sleep(5)
    signed = [with_routed(routed.sign(secret, "GET", path, time.time())) for _ in range(20)]
    assert signed == [200] * 20
    # The same address without a signature is limited like any other.
    plain = [http_json(port, path, headers=auth(token), timeout=10)[0] for _ in range(8)]
    assert plain[:5] == [200] * 5 and 429 in plain[5:]
    time.sleep(5)


async def _handshakes(url: str, headers: dict, count: int) -> tuple[list[int], list]:
    """``count`` handshakes at once; the statuses, and the sockets that opened."""
    session = aiohttp.ClientSession()

    async def one() -> tuple[int, object]:
        try:
            ws = await session.ws_connect(url, headers=headers)
            return 101, ws
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, None

    results = await asyncio.gather(*(one() for _ in range(count)))
    return [s for s, _ in results], [ws for _, ws in results if ws is not None] + [session]


async def _close(opened: list) -> None:
    for item in opened:
        await item.close()


@pytest.mark.parametrize("path", ["/api/live/AAPL?interval=1m", "/api/signals/live"])
def test_concurrent_handshakes_cannot_overshoot_the_per_client_limit(hostile, path):
    port, token = hostile["port"], hostile["token"]
    url = f"ws://127.0.0.1:{port}{path}"

    async def scenario() -> tuple[list[int], int, int, int]:
        statuses, opened = await _handshakes(url, auth(token), 30)
        try:
            held = live_stats(hostile)["clients"]
        finally:
            await _close(opened)
        # Every place is given back: after the closes the same address may open its three.
        deadline = time.monotonic() + 10
        while live_stats(hostile)["clients"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        released = live_stats(hostile)["clients"]
        again, reopened = await _handshakes(url, auth(token), PER_CLIENT)
        await _close(reopened)
        return statuses, held, released, again.count(101)

    statuses, held, released, again = asyncio.run(scenario())
    assert statuses.count(101) == PER_CLIENT, statuses
    assert statuses.count(429) == 30 - PER_CLIENT, statuses
    assert held == PER_CLIENT and released == 0 and again == PER_CLIENT


def test_a_relay_a_worker_signed_is_counted_where_its_client_arrived(hostile):
    port, token, secret = hostile["port"], hostile["token"], hostile["signing"]
    path = "/api/live/AAPL?interval=1m"

    async def scenario() -> tuple[list[int], list[int]]:
        signed = {
            **auth(token),
            routed.ROUTED_HEADER: routed.sign(secret, "GET", path, time.time()),
        }
        relays, opened = await _handshakes(f"ws://127.0.0.1:{port}{path}", signed, PER_CLIENT + 2)
        forged = {**auth(token), routed.ROUTED_HEADER: "1"}
        refused, more = await _handshakes(f"ws://127.0.0.1:{port}{path}", forged, 1)
        await _close(opened + more)
        return relays, refused

    relays, refused = asyncio.run(scenario())
    assert relays == [101] * (PER_CLIENT + 2)
    assert refused == [403]


def test_writes_need_the_admin_token(hostile):
    port, token, admin = hostile["port"], hostile["token"], hostile["admin"]
    rule = orjson.dumps(
        {
            "name": "hostile_rule",
            "kind": "breakout_up",
            "lookback": 5,
            "interval": "1m",
            "symbols": "*",
        }
    )
    json_type = {"Content-Type": "application/json"}

    def post(headers: dict) -> tuple[int, dict]:
        status, body, _ = http_json(
            port, "/api/rules", "POST", rule, {**json_type, **headers}, timeout=30
        )
        return status, body

    status, body = post(auth(token))
    assert status == 403 and "STOCKAPP_ADMIN_TOKEN" in body["error"]
    assert post({})[0] == 401
    assert http_json(port, "/api/rules/x", "DELETE", None, auth(token), timeout=30)[0] == 403
    assert post(auth(admin))[0] == 201
    names = {r["name"] for r in http_json(port, "/api/rules", headers=auth(token))[1]["rules"]}
    assert "hostile_rule" in names  # the viewers' token reads
    status, body, _ = http_json(
        port, "/api/rules/hostile_rule", "DELETE", None, auth(admin), timeout=30
    )
    assert (status, body) == (200, {"deleted": "hostile_rule"})


def test_preflights_are_answered_for_the_configured_origin_only(hostile):
    port = hostile["port"]
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    status, _, headers = http_json(port, "/api/rules", "OPTIONS", None, {"Origin": ORIGIN, **ask})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"Authorization", "Content-Type"} <= set(
        headers["Access-Control-Allow-Headers"].split(", ")
    )
    assert {"POST", "DELETE"} <= set(headers["Access-Control-Allow-Methods"].split(", "))
    status, body, headers = http_json(
        port, "/api/rules", "OPTIONS", None, {"Origin": "http://evil.example", **ask}
    )
    assert status == 403 and "error" in body
    assert not [h for h in headers if h.lower().startswith("access-control")]
    # An error for the listed origin is readable by its page.
    status, _, headers = http_json(port, "/api/symbols", headers={"Origin": ORIGIN})
    assert status == 401 and headers["Access-Control-Allow-Origin"] == ORIGIN


def test_the_page_has_a_policy_and_cannot_be_framed(hostile):
    status, _, headers = http_json(hostile["port"], "/")
    assert status == 200
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert f"ws://127.0.0.1:{hostile['port']}" in policy
    assert headers["X-Frame-Options"] == "DENY"


def test_a_malformed_signal_is_dropped_and_counted_not_pushed(hostile):
    port, token, env = hostile["port"], hostile["token"], hostile["env"]
    bootstrap = hostile["stack"].kafka_bootstrap[0]
    topic = env["STOCKAPP_TOPIC_SIGNALS"]
    before = live_stats(hostile)["signals_malformed"]

    async def scenario() -> list[dict]:
        """Rounds of two malformed records and a signal, until the feed (which tails the
        topic from its end, once its first client came) pushes something."""
        ticket = make_ticket(token, time.time())
        url = f"ws://127.0.0.1:{port}/api/signals/live?ticket={ticket}"
        bad = orjson.dumps({**SIGNAL, "values": {"sma_20": "not a number"}})
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                for _ in range(20):
                    for value in (b"not json", bad, orjson.dumps(SIGNAL)):
                        await producer.send_and_wait(topic, value, key=b"HOST")
                    try:
                        first = await ws.receive_json(timeout=3)
                    except TimeoutError:
                        continue
                    rest = []
                    with contextlib.suppress(TimeoutError):
                        while True:
                            rest.append(await ws.receive_json(timeout=1))
                    return [first, *rest]
        finally:
            await producer.stop()
        raise AssertionError("the live signals feed pushed nothing in 20 rounds")

    received = asyncio.run(scenario())
    assert received and all(m["signal"] == SIGNAL for m in received), received
    # Each signal pushed came after two malformed records, both dropped and counted.
    malformed = live_stats(hostile)["signals_malformed"] - before
    assert malformed >= 2 * len(received), (malformed, received)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"STOCKAPP_API_TOKEN": "   "}, "STOCKAPP_API_TOKEN=<hidden> is only whitespace"),
        ({"STOCKAPP_ADMIN_TOKEN": "too-short"}, "STOCKAPP_ADMIN_TOKEN must hold at least 16"),
        ({"STOCKAPP_WORKER_SECRET": " \t "}, "STOCKAPP_WORKER_SECRET=<hidden> is only whitespace"),
        ({"STOCKAPP_WEB_HOST": "0.0.0.0"}, "STOCKAPP_WEB_HOST=0.0.0.0 is reachable"),
    ],
)
def test_a_worker_refuses_to_start_with_a_blank_or_short_token_or_exposed_without_one(env, says):
    done = subprocess.run(
        [str(BIN / "stockapp"), "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"stockapp: error: {says}") and done.stderr.count("\n") == 1
    assert "too-short" not in done.stderr


def test_no_traceback_and_no_error_in_the_workers_log(hostile):
    """Last: everything above went through this worker."""
    log = hostile["worker"].log.read_text()
    assert "stockapp" in log or "INFO" in log  # it did log
    bad = [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line]
    assert not bad, "\n".join(bad[:20])
    for secret in ("token", "admin", "signing"):
        assert hostile[secret] not in log
