"""The web server's guard on a real worker with a token (from a file, as a mounted secret):
what stays open, what needs the token, tickets for the live socket, host names, Faust's
internal views, live connection limits, body sizes, and the token kept out of the logs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import aiohttp
import orjson
import pytest

from stockapp.db.migrate import migrate
from stockapp.web.guard import make_ticket
from tests.helpers import REPO, http_json, wait_http
from tests.integration.workers import Worker, produce, worker_env

T0 = 1_767_621_600_000


@pytest.fixture(scope="module")
def secured(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    unique = os.urandom(5).hex()
    token = "s3cret-" + os.urandom(12).hex()
    token_file = tmp / "token"
    token_file.write_text(token + "\n")
    keyspace = f"stockapp_sec_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "sec",
        unique,
        keyspace,
        tmp / "data",
        STOCKAPP_API_TOKEN_FILE=str(token_file),
        STOCKAPP_LIVE_MAX_PER_CLIENT="2",
        # The rate limit applies to this test's own address, which is exempt by default.
        STOCKAPP_API_RATE_EXEMPT="192.0.2.1",
        STOCKAPP_API_RATE_PER_CLIENT="5",
        STOCKAPP_API_RATE_BURST="20",
        STOCKAPP_LOG_LEVEL="DEBUG",  # the most the worker ever logs: the token must not be in it
    )
    records = [
        (
            b"AAPL",
            orjson.dumps({"symbol": "AAPL", "ts": T0 + i * 1000, "price": 10 + i, "volume": 1}),
        )
        for i in range(5)
    ]
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
    worker = Worker(env, tmp / "worker.log")
    port = int(env["STOCKAPP_WEB_PORT"])
    try:
        worker.start()
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        deadline = time.monotonic() + 120
        while call(port, "/api/symbols", token)[1].get("symbols") in (None, []):
            assert time.monotonic() < deadline, worker.log.read_text()[-2000:]
            time.sleep(0.5)
        yield {"port": port, "token": token, "worker": worker}
    finally:
        worker.stop()


def call(
    port: int,
    path: str,
    token: str | None = None,
    host: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, dict, dict]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if host:
        headers["Host"] = host
    return http_json(port, path, method, body, headers, timeout=10)


def test_probes_and_the_page_are_open_the_rest_needs_the_token(secured):
    port, token = secured["port"], secured["token"]
    assert call(port, "/health")[0] == 200
    assert call(port, "/ready")[0] == 200
    assert call(port, "/")[0] == 200
    for path in ("/api/symbols", "/api/candles/AAPL?interval=1m", "/stats", "/metrics"):
        status, body, headers = call(port, path)
        assert status == 401 and body == {"error": "missing or wrong bearer token"}, path
        assert headers["WWW-Authenticate"] == "Bearer"
        assert call(port, path, token="wrong")[0] == 401
        assert call(port, path, token=token)[0] == 200, path
    assert call(port, "/debug/tasks")[0] == 401


def test_fausts_internal_views_are_not_served(secured):
    port, token = secured["port"], secured["token"]
    for path in ("/router/", "/table/symbol-state/", "/graph/", "/stats/"):
        assert call(port, path, token=token)[0] == 404, path


def test_a_host_name_not_allowed_is_refused(secured):
    """What a page on another site sends after rebinding its DNS name to this address."""
    port, token = secured["port"], secured["token"]
    status, body, _ = call(port, "/api/symbols", token=token, host=f"evil.example:{port}")
    assert status == 403 and "host not allowed" in body["error"]
    assert call(port, "/health", host=f"evil.example:{port}")[0] == 403
    assert call(port, "/api/symbols", token=token, host=f"localhost:{port}")[0] == 200
    assert call(port, "/api/symbols", token=token, host=f"10.1.2.3:{port}")[0] == 200


def test_the_live_socket_needs_a_ticket_or_the_header(secured):
    port, token = secured["port"], secured["token"]
    url = f"ws://127.0.0.1:{port}/api/live/AAPL?interval=1m"
    assert call(port, "/api/ws-ticket", method="POST", body=b"")[0] == 401
    status, issued, _ = call(port, "/api/ws-ticket", token=token, method="POST", body=b"")
    assert status == 200 and issued["expires_in"] == 30

    async def handshake(address: str, headers: dict | None = None) -> int:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(address, headers=headers or {}) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert asyncio.run(handshake(url)) == 401
    assert asyncio.run(handshake(f"{url}&ticket={issued['ticket']}")) == 101
    assert asyncio.run(handshake(url, {"Authorization": f"Bearer {token}"})) == 101
    forged = make_ticket("not-the-token", time.time())
    expired = make_ticket(token, time.time() - 60)
    assert asyncio.run(handshake(f"{url}&ticket={forged}")) == 401
    assert asyncio.run(handshake(f"{url}&ticket={expired}")) == 401
    # A ticket is for the live socket only.
    assert call(port, f"/api/symbols?ticket={issued['ticket']}")[0] == 401
    # Another site's page may not open it, ticket or not.
    foreign = {"Origin": "http://evil.example", "Authorization": f"Bearer {token}"}
    assert asyncio.run(handshake(url, foreign)) == 403


def test_live_connections_from_one_address_are_limited(secured):
    port, token = secured["port"], secured["token"]
    url = f"ws://127.0.0.1:{port}/api/live/AAPL?interval=1m"
    auth = {"Authorization": f"Bearer {token}"}

    async def scenario() -> list[int]:
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(url, headers=auth)
            second = await http.ws_connect(url, headers=auth)
            try:
                await http.ws_connect(url, headers=auth)
                third = 101
            except aiohttp.WSServerHandshakeError as exc:
                third = exc.status
            await first.close()
            await asyncio.sleep(0.5)  # the worker notices the close
            again = await http.ws_connect(url, headers=auth)
            await again.close()
            await second.close()
            return [third, 101]

    assert asyncio.run(scenario()) == [429, 101]


def test_a_large_body_is_refused_before_it_is_read(secured):
    port, token = secured["port"], secured["token"]
    status, body, _ = call(port, "/api/ws-ticket", token=token, method="POST", body=b"x" * 200_000)
    assert status == 413 and "over 65536 bytes" in body["error"]


def test_expensive_queries_are_rate_limited_per_address(secured):
    """5 tokens/s, a burst of 20; 5,000 candles cost 10 tokens."""
    port, token = secured["port"], secured["token"]
    time.sleep(4)  # whatever the earlier tests spent is back
    path = "/api/candles/AAPL?interval=1m&limit=5000"
    assert call(port, path, token=token)[0] == 200
    assert call(port, path, token=token)[0] == 200
    status, body, headers = call(port, path, token=token)
    assert status == 429 and "too many requests" in body["error"]
    wait = int(headers["Retry-After"])
    assert 1 <= wait <= 2
    assert call(port, "/api/meta", token=token)[0] == 200  # cheap: not limited
    time.sleep(wait)
    assert call(port, path, token=token)[0] == 200
    time.sleep(4)  # leave the bucket full for the tests after


def test_the_token_is_never_logged(secured):
    log = secured["worker"].log.read_text()
    assert "GET" in log or "stockapp" in log  # the worker did log (at DEBUG)
    assert secured["token"] not in log


@pytest.mark.browser
def test_the_page_asks_for_the_token_and_then_charts_live(secured):
    """Headless Chromium (Debian's): the token form, a wrong token refused, the right one
    showing the chart and opening the live socket with a ticket (frontend/e2e/token.e2e.mjs)."""
    result = subprocess.run(
        ["node", "e2e/token.e2e.mjs"],
        cwd=REPO / "frontend",
        env={
            **os.environ,
            "STOCKAPP_URL": f"http://127.0.0.1:{secured['port']}",
            "STOCKAPP_TOKEN": secured["token"],
            "STOCKAPP_ARTIFACTS": str(REPO / "artifacts"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
