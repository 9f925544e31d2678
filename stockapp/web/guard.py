"""Who may talk to a worker's web server (docs/security.md).

- **Host names.** A request whose Host header names a host this worker does not answer to is
  refused: that is what a page on another site sends after rebinding its DNS name to this
  address. IP literals are always accepted (probes and Prometheus address workers by IP, and a
  rebinding page cannot present one); names must be the worker's own ``web_host`` (or
  ``web_advertise``) or listed in
  ``STOCKAPP_ALLOWED_HOSTS``.
- **Bearer token** (``STOCKAPP_API_TOKEN`` or ``..._FILE``): when set, ``/api/*``, ``/stats``,
  ``/metrics`` and ``/debug/*`` need ``Authorization: Bearer <token>``; ``/health``,
  ``/ready`` and the front end's files stay open. Browsers cannot put a header on a WebSocket,
  so the live socket also takes a ``ticket`` query parameter: a short-lived HMAC of its expiry
  under the token, from ``POST /api/ws-ticket`` (which needs the header). Every worker holds
  the same token, so any of them accepts a ticket another made.
- **Request size.** A body above ``STOCKAPP_API_MAX_REQUEST_BYTES`` is refused (413) before it
  is read.
- **Rate.** Expensive API queries draw on a token bucket per client address
  (stockapp/web/ratelimit.py); an empty bucket answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from typing import Any

from aiohttp import web

from stockapp.settings import Settings
from stockapp.web.ratelimit import RateLimiter, cost

TICKET_SECONDS = 30
# The header a worker puts on a request it forwards to another (stockapp/web/http.py).
ROUTED_HEADER = "X-Stockapp-Routed"
PROTECTED = ("/api/", "/stats", "/metrics", "/debug/")
LIVE = ("/api/live/", "/api/signals/live")  # the WebSockets, which take a ticket


def make_ticket(token: str, now: float, seconds: int = TICKET_SECONDS) -> str:
    """A ticket for the live WebSocket, valid until ``now + seconds``."""
    expiry = int(now) + seconds
    return f"{expiry}.{_mac(token, expiry)}"


def ticket_valid(ticket: str, token: str, now: float) -> bool:
    expiry_text, _, mac = ticket.partition(".")
    if not expiry_text.isdigit() or len(expiry_text) > 12:
        return False
    expiry = int(expiry_text)
    if not now <= expiry <= now + TICKET_SECONDS + 1:
        return False
    return hmac.compare_digest(mac, _mac(token, expiry))


def _mac(token: str, expiry: int) -> str:
    return hmac.new(token.encode(), f"live:{expiry}".encode(), hashlib.sha256).hexdigest()


def bearer_ok(request: Any, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def host_allowed(host: str | None, settings: Settings) -> bool:
    """``host`` as in the Host header (``name[:port]``, ``[v6]:port``)."""
    allowed = settings.allowed_hosts
    if "*" in allowed:
        return True
    if not host:
        return False
    if host.startswith("["):  # [v6] or [v6]:port
        name = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:  # name:port
        name = host.rsplit(":", 1)[0]
    else:
        name = host
    name = name.lower()
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    own = {settings.web_host.lower(), settings.web_advertise.lower()}
    return name in own or name in {h.lower() for h in allowed}


CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _authorized(request: web.Request, token: str) -> bool:
    if bearer_ok(request, token):
        return True
    ticket = request.query.get("ticket", "")
    return (
        request.path.startswith(LIVE) and bool(ticket) and ticket_valid(ticket, token, time.time())
    )


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def protect(web_driver: Any, settings: Settings) -> None:
    """Install the checks on the worker's aiohttp application (before it starts)."""
    token = settings.api_secret
    limit = settings.api_max_request_bytes
    rate = settings.api_rate_per_client
    limiter = RateLimiter(rate, settings.api_rate_burst, time.monotonic) if rate > 0 else None
    exempt = set(settings.api_rate_exempt)

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if not host_allowed(request.host, settings):
            return _error(403, "host not allowed (STOCKAPP_ALLOWED_HOSTS)")
        if request.content_length is not None and request.content_length > limit:
            return _error(413, f"request body over {limit} bytes")
        path = request.path
        if token and path.startswith(PROTECTED) and not _authorized(request, token):
            return _error(401, "missing or wrong bearer token", **CHALLENGE)
        if limiter is not None and path.startswith("/api/"):
            tokens = cost(path, dict(request.query))
            client = request.remote or "?"
            # A request another worker forwards was counted where the client sent it.
            if tokens and client not in exempt and not request.headers.get(ROUTED_HEADER):
                wait = limiter.take(client, tokens)
                if wait > 0:
                    retry = str(math.ceil(wait))
                    message = f"too many requests from this address; retry in {retry} s"
                    return _error(429, message, **{"Retry-After": retry})
        return await handler(request)

    web_driver.web_app.middlewares.append(guard)
