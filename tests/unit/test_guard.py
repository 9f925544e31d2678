"""The web guard's pure parts: host names and live-socket tickets (the middleware itself is
tested on a real worker in tests/integration/test_security.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from stockapp.settings import load_settings
from stockapp.web import routed
from stockapp.web.guard import (
    TICKET_SECONDS,
    TRUSTED_ROUTED,
    bearer_ok,
    host_allowed,
    make_ticket,
    protect,
    ticket_valid,
)


def settings(hosts=("127.0.0.1", "localhost", "::1"), web_host="127.0.0.1", advertise=""):
    return SimpleNamespace(allowed_hosts=hosts, web_host=web_host, web_advertise=advertise)


def test_host_names():
    s = settings(web_host="worker-3")
    assert host_allowed("localhost:6066", s)
    assert host_allowed("LOCALHOST", s)
    assert host_allowed("worker-3:6066", s)  # its own name
    assert host_allowed("w3.internal:6066", settings(web_host="0.0.0.0", advertise="w3.internal"))
    assert host_allowed("10.0.0.7:6066", s)  # an IP literal: never a rebinding page's
    assert host_allowed("[::1]:6066", s)
    assert host_allowed("[::1]", s)
    assert host_allowed("[2001:db8::1]:6066", s)
    assert not host_allowed("evil.example:6066", s)
    assert not host_allowed("localhost.evil.example", s)
    assert not host_allowed(None, s)
    assert not host_allowed("", s)
    assert host_allowed("anything:1", settings(hosts=("*",)))


def test_tickets_expire_and_are_bound_to_the_token():
    now = 1_000_000.0
    ticket = make_ticket("token", now)
    assert ticket_valid(ticket, "token", now)
    assert ticket_valid(ticket, "token", now + TICKET_SECONDS)
    assert not ticket_valid(ticket, "token", now + TICKET_SECONDS + 1)
    assert not ticket_valid(ticket, "other", now)
    # A ticket cannot be stretched: its expiry is inside the MAC, and one too far ahead is
    # refused whatever its MAC.
    expiry, _, mac = ticket.partition(".")
    assert not ticket_valid(f"{int(expiry) + 100}.{mac}", "token", now)
    assert not ticket_valid(make_ticket("token", now + 3600), "token", now)
    for junk in ("", ".", "abc.def", "1e9.x", "-5.x", "9" * 40 + ".x"):
        assert not ticket_valid(junk, "token", now)


def test_bearer_header():
    def request(header):
        return SimpleNamespace(headers={"Authorization": header} if header else {})

    assert bearer_ok(request("Bearer t0k"), "t0k")
    assert bearer_ok(request("bearer  t0k "), "t0k")
    assert not bearer_ok(request("Bearer t0k2"), "t0k")
    assert not bearer_ok(request("Basic t0k"), "t0k")
    assert not bearer_ok(request(None), "t0k")


def test_bearer_values_of_any_bytes_are_refused_not_raised():
    def request(header):
        return SimpleNamespace(headers={"Authorization": header})

    # aiohttp hands header bytes that are not UTF-8 over as surrogates ("\xff" -> "\udcff").
    for value in ("Bearer \udcff", "Bearer t0k\u00e9", "Bearer \u2603", "Bearer \x00"):
        assert not bearer_ok(request(value), "t0k")


def test_tickets_of_any_characters_are_refused_not_raised():
    now = 1_000_000.0
    expiry = int(now) + 10
    for junk in (f"{expiry}.\u00e9", f"{expiry}.\udcff", "\u0661\u0662.x", f"{expiry}.ab\u2603"):
        assert not ticket_valid(junk, "token", now)


# The inter-worker signature (stockapp/web/routed.py).


def test_a_routed_signature_binds_method_path_and_expiry():
    now = 1_000_000.0
    value = routed.sign("w" * 32, "GET", "/api/candles/AAPL?interval=1m", now)
    assert routed.verify(value, "w" * 32, "GET", "/api/candles/AAPL?interval=1m", now)
    assert routed.verify(value, "w" * 32, "get", "/api/candles/AAPL?interval=1m", now + 29)
    assert not routed.verify(value, "x" * 32, "GET", "/api/candles/AAPL?interval=1m", now)
    assert not routed.verify(value, "w" * 32, "POST", "/api/candles/AAPL?interval=1m", now)
    assert not routed.verify(value, "w" * 32, "GET", "/api/candles/AAPL?interval=5m", now)
    assert not routed.verify(value, "w" * 32, "GET", "/api/candles/MSFT?interval=1m", now)
    expiry, _, mac = value.partition(".")
    stretched = f"{int(expiry) + 3600}.{mac}"
    assert not routed.verify(stretched, "w" * 32, "GET", "/api/candles/AAPL?interval=1m", now)
    # Expired (beyond the allowance for two machines' clocks).
    late = now + routed.ROUTED_SECONDS + routed.CLOCK_SKEW_SECONDS + 1
    assert not routed.verify(value, "w" * 32, "GET", "/api/candles/AAPL?interval=1m", late)
    for junk in ("1", "", ".", "x.y", f"{expiry}.\udcff", f"{expiry}.\u00e9", "9" * 40 + ".a"):
        assert not routed.verify(junk, "w" * 32, "GET", "/api/candles/AAPL?interval=1m", now)


# The middleware on a plain aiohttp application: what a client sends, byte for byte.

TOKEN = "viewer-token-0123456789"
ADMIN = "admin-token-0123456789"
WORKER = "worker-secret-0123456789"


SEEN = web.AppKey("seen", list)


def guarded_app(**changes) -> web.Application:
    settings = load_settings().model_copy(
        update={"api_rate_per_client": 0.0, "cors_origins": ("http://dash.example",), **changes}
    )
    app = web.Application()
    seen: list[bool | None] = []

    async def view(request: web.Request) -> web.Response:
        seen.append(request.get(TRUSTED_ROUTED))
        return web.json_response({"ok": True})

    for path in ("/api/symbols", "/api/rules", "/api/rules/{name}", "/api/live/{symbol}", "/"):
        app.router.add_route("*", path, view)
    protect(SimpleNamespace(web_app=app), settings)
    app[SEEN] = seen
    return app


async def raw(server: TestServer, request: bytes) -> tuple[int, dict, dict]:
    """Send ``request`` as it is (bytes no client library would send); status, JSON, headers."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    writer.close()
    return int(lines[0].split()[1]), json.loads(body) if body else {}, headers


def call(app: web.Application, *requests: bytes) -> list[tuple[int, dict, dict]]:
    async def run() -> list[tuple[int, dict, dict]]:
        server = TestServer(app)
        await server.start_server()
        try:
            return [await raw(server, r) for r in requests]
        finally:
            await server.close()

    return asyncio.run(run())


def get(path: str, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n"


def test_hostile_bytes_get_4xx_json_never_a_500(caplog):
    app = guarded_app(api_token=TOKEN)
    expiry = int(time.time()) + 10
    answers = call(
        app,
        get("/api/symbols", b"Authorization: Bearer \xff"),
        get("/api/symbols", b"Authorization: Bearer \xc3\xa9t\xc3\xa9"),
        get(f"/api/live/AAPL?ticket={expiry}.%C3%A9"),
        get(f"/api/live/AAPL?ticket={expiry}.%FF%FE"),
        get("/api/symbols", b"Origin: http://[", f"Authorization: Bearer {TOKEN}".encode()),
        get("/api/symbols", b"Origin: http://\xff\xfe", f"Authorization: Bearer {TOKEN}".encode()),
        get("/api/symbols?limit=%FF", f"Authorization: Bearer {TOKEN}".encode()),
    )
    assert [a[0] for a in answers] == [401, 401, 401, 401, 403, 403, 200]
    for status, body, _ in answers[:-1]:
        assert "error" in body, (status, body)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_routed_header_is_trusted_only_when_signed():
    app = guarded_app(worker_secret=WORKER)
    path = "/api/symbols?x=1"
    good = routed.sign(WORKER, "GET", path, time.time())
    forged = routed.sign("not-the-worker-secret", "GET", path, time.time())
    expired = routed.sign(WORKER, "GET", path, time.time() - 120)
    other_path = routed.sign(WORKER, "GET", "/api/symbols", time.time())
    values = (good, forged, expired, other_path, "1", "\xff")
    answers = call(app, *(get(path, b"X-Stockapp-Routed: " + v.encode("latin-1")) for v in values))
    assert [a[0] for a in answers] == [200, 403, 403, 403, 403, 403]
    assert all("X-Stockapp-Routed" in a[1]["error"] for a in answers[1:])
    assert app[SEEN] == [True]  # only the signed one reached the view, trusted


def test_without_a_worker_secret_the_routed_header_earns_nothing():
    app = guarded_app()
    status, _, _ = call(app, get("/api/symbols", b"X-Stockapp-Routed: 1"))[0]
    assert (status, app[SEEN]) == (200, [False])


def test_rule_writes_need_the_admin_token():
    app = guarded_app(api_token=TOKEN, admin_token=ADMIN)
    viewer = f"Authorization: Bearer {TOKEN}".encode()
    admin = f"Authorization: Bearer {ADMIN}".encode()
    answers = call(
        app,
        get("/api/rules", viewer),  # reading: the viewers' token
        get("/api/rules", viewer, method=b"POST"),
        get("/api/rules/x", viewer, method=b"DELETE"),
        get("/api/rules", method=b"POST"),
        get("/api/rules", admin, method=b"POST"),
        get("/api/rules/x", admin, method=b"DELETE"),
        get("/api/symbols", admin),  # the admin token reads too
    )
    assert [a[0] for a in answers] == [200, 403, 403, 401, 200, 200, 200]
    assert "STOCKAPP_ADMIN_TOKEN" in answers[1][1]["error"]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 200),  # loopback, no token at all: the local default
        ({"api_token": TOKEN}, 403),  # a token but no admin token: writes are off
        ({"web_host": "0.0.0.0", "allow_open": True}, 403),  # exposed: never open writes
    ],
)
def test_without_an_admin_token_writes_are_open_only_on_an_open_loopback_worker(changes, status):
    app = guarded_app(**changes)
    auth = f"Authorization: Bearer {TOKEN}".encode()
    answer = call(app, get("/api/rules", auth, method=b"POST"))[0]
    assert answer[0] == status
    if status == 403:
        assert "STOCKAPP_ADMIN_TOKEN" in answer[1]["error"]


def test_options_preflights_are_answered_for_the_configured_origins():
    app = guarded_app(api_token=TOKEN)
    preflight = (
        b"Origin: http://dash.example",
        b"Access-Control-Request-Method: POST",
        b"Access-Control-Request-Headers: authorization, content-type",
    )
    answers = call(
        app,
        get("/api/rules", *preflight, method=b"OPTIONS"),
        get("/api/rules", b"Origin: http://other.example", method=b"OPTIONS"),
        get("/api/symbols", b"Origin: http://dash.example"),  # refused (no token), readable
    )
    (status, _, headers), (other, _, other_headers), (refused, body, refused_headers) = answers
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://dash.example"
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert other == 403 and not any(h.startswith("Access-Control") for h in other_headers)
    assert (
        refused == 401 and refused_headers["Access-Control-Allow-Origin"] == "http://dash.example"
    )
