"""The web guard's pure parts: host names and live-socket tickets (the middleware itself is
tested on a real worker in tests/integration/test_security.py)."""

from __future__ import annotations

from types import SimpleNamespace

from stockapp.web.guard import TICKET_SECONDS, bearer_ok, host_allowed, make_ticket, ticket_valid


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
