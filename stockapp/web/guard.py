"""Who may talk to a worker's web server (docs/security.md).

- **Host names.** A request whose Host header names a host this worker does not answer to is
  refused: that is what a page on another site sends after rebinding its DNS name to this
  address. IP literals are always accepted (probes and Prometheus address workers by IP, and a
  rebinding page cannot present one); names must be the worker's own ``web_host`` (or
  ``web_advertise``) or listed in
  ``STOCKAPP_ALLOWED_HOSTS``.
- **Origin.** An ``Origin`` header no browser would send (``http://[``) is refused (403);
  ``OPTIONS`` preflights under ``/api/`` are answered here, with CORS headers for the origins
  of ``STOCKAPP_CORS_ORIGINS`` only (stockapp/web/cors.py), and so are the guard's own refusals.
- **Request size.** A body above ``STOCKAPP_API_MAX_REQUEST_BYTES`` is refused (413) before it
  is read.
- **Routed requests** (stockapp/web/routed.py): with ``STOCKAPP_WORKER_SECRET``, a request
  carrying ``X-Stockapp-Routed`` must be signed by a worker (403 otherwise); only a signed one
  skips the rate limit and the per-client live limit.
- **Bearer token** (``STOCKAPP_API_TOKEN`` or ``..._FILE``): when set, ``/api/*``, ``/stats``,
  ``/metrics`` and ``/debug/*`` need ``Authorization: Bearer <token>`` (or the admin token);
  ``/health``, ``/ready`` and the front end's files stay open. Browsers cannot put a header on
  a WebSocket, so the live socket also takes a ``ticket`` query parameter: a short-lived HMAC
  of its expiry under the token, from ``POST /api/ws-ticket`` (which needs the header). Every
  worker holds the same token, so any of them accepts a ticket another made.
- **Writes** (``POST``/``DELETE`` under ``/api/rules``) need ``STOCKAPP_ADMIN_TOKEN``; without
  one they are refused (403 naming it) whenever a token is set or the worker is exposed, and
  open only on a loopback worker with no token at all (the local default).
- **Rate.** Expensive API queries draw on a token bucket per client address
  (stockapp/web/ratelimit.py); an empty bucket answers 429 with ``Retry-After``.

Whatever a client sends (bytes that are not UTF-8 in a header, a ticket of any characters),
every refusal is a JSON 4xx: secrets are compared as bytes, and nothing here raises.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections import Counter
from typing import Any

from aiohttp import web

from stockapp.settings import Settings
from stockapp.web import cors, routed
from stockapp.web.ratelimit import RateLimiter, cost
from stockapp.web.routed import ROUTED_HEADER

log = logging.getLogger(__name__)

TICKET_SECONDS = 30
PROTECTED = ("/api/", "/stats", "/metrics", "/debug/")
LIVE = ("/api/live/", "/api/signals/live")  # the WebSockets, which take a ticket
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Set on a request whose X-Stockapp-Routed signature is valid (the views read it).
TRUSTED_ROUTED = web.RequestKey("stockapp.trusted_routed", bool)
# Requests refused here since the start, by reason (/stats, /metrics): host, origin, size,
# routed, token, write, rate, other. None is logged: a client could fill the log.
REFUSED: Counter[str] = Counter()
REFUSAL_REASONS = ("host", "origin", "size", "routed", "token", "write", "rate", "other")


def make_ticket(token: str, now: float, seconds: int = TICKET_SECONDS) -> str:
    """A ticket for the live WebSocket, valid until ``now + seconds``."""
    expiry = int(now) + seconds
    return f"{expiry}.{_mac(token, expiry)}"


def ticket_valid(ticket: str, token: str, now: float) -> bool:
    """Never raises, whatever the ticket holds."""
    expiry_text, _, mac = ticket.partition(".")
    if not (expiry_text.isascii() and expiry_text.isdigit()) or len(expiry_text) > 12:
        return False
    expiry = int(expiry_text)
    if not now <= expiry <= now + TICKET_SECONDS + 1:
        return False
    return same_bytes(mac, _mac(token, expiry))


def _mac(token: str, expiry: int) -> str:
    return hmac.new(token.encode(), f"live:{expiry}".encode(), hashlib.sha256).hexdigest()


def same_bytes(given: str, secret: str) -> bool:
    """Constant-time comparison of what a client sent with a secret, as bytes:
    ``hmac.compare_digest`` raises on a str that is not ASCII, and aiohttp hands over header
    bytes that are not UTF-8 as surrogates, which plain ``encode()`` refuses."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), secret.encode("utf-8", "surrogateescape")
    )


def bearer_ok(request: Any, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and same_bytes(value.strip(), token)


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


def _authorized(request: web.Request, tokens: tuple[str, ...], ticket_token: str) -> bool:
    """The bearer header holds one of ``tokens``, or a live socket's ticket is valid."""
    if any(bearer_ok(request, token) for token in tokens):
        return True
    ticket = request.query.get("ticket", "")
    return (
        bool(ticket_token)
        and request.path.startswith(LIVE)
        and bool(ticket)
        and ticket_valid(ticket, ticket_token, time.time())
    )


def is_write(method: str, path: str) -> bool:
    """A request that changes what every worker does: creating or deleting a rule."""
    return method in WRITE_METHODS and (path == "/api/rules" or path.startswith("/api/rules/"))


def write_refusal(request: Any, settings: Settings) -> web.Response | None:
    """None if the request may write; else the answer. With an admin token, only it writes
    (401 without it, 403 for the viewers' token); without one, writing is open only on a
    loopback worker with no token at all, the local default, and refused otherwise."""
    admin, api = settings.admin_secret, settings.api_secret
    if admin:
        if bearer_ok(request, admin):
            return None
        if api and bearer_ok(request, api):
            return _error(
                403,
                "this token may read, not write: writing rules needs the admin token "
                "(STOCKAPP_ADMIN_TOKEN)",
            )
        return _error(
            401, "writing rules needs the admin token (STOCKAPP_ADMIN_TOKEN)", **CHALLENGE
        )
    if api or not settings.web_loopback:
        return _error(
            403,
            "writing rules is turned off on this server: set STOCKAPP_ADMIN_TOKEN "
            "(or STOCKAPP_ADMIN_TOKEN_FILE) on the workers to allow it",
        )
    return None


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def protect(web_driver: Any, settings: Settings) -> None:
    """Install the checks on the worker's aiohttp application (before it starts)."""
    token = settings.api_secret
    readers = tuple(t for t in (token, settings.admin_secret) if t)  # the admin token reads too
    worker_secret = settings.inter_worker_secret
    limit = settings.api_max_request_bytes
    rate = settings.api_rate_per_client
    limiter = RateLimiter(rate, settings.api_rate_burst, time.monotonic) if rate > 0 else None
    exempt = set(settings.api_rate_exempt)

    def refusal(request: web.Request, origin: str | None) -> tuple[str, web.Response] | None:
        """Why a request may not reach its view, and the answer; None if it may."""
        if not host_allowed(request.host, settings):
            return "host", _error(403, "host not allowed (STOCKAPP_ALLOWED_HOSTS)")
        if origin is not None and not cors.understood(origin):
            return "origin", _error(403, "origin header not understood")
        path = request.path
        if request.method == "OPTIONS" and path.startswith("/api/"):
            return _preflight(origin)
        if request.content_length is not None and request.content_length > limit:
            return "size", _error(413, f"request body over {limit} bytes")
        routed_value = request.headers.get(ROUTED_HEADER)
        request[TRUSTED_ROUTED] = False
        if routed_value is not None and worker_secret:
            if not routed.verify(
                routed_value, worker_secret, request.method, request.raw_path, time.time()
            ):
                return "routed", _error(403, f"invalid or expired {ROUTED_HEADER} signature")
            request[TRUSTED_ROUTED] = True
        if token and path.startswith(PROTECTED) and not _authorized(request, readers, token):
            return "token", _error(401, "missing or wrong bearer token", **CHALLENGE)
        if is_write(request.method, path):
            refused = write_refusal(request, settings)
            if refused is not None:
                return "write", refused
        if limiter is not None and path.startswith("/api/"):
            tokens = cost(path, dict(request.query))
            client = request.remote or "?"
            # A request another worker forwards was counted where the client sent it.
            if tokens and client not in exempt and not request[TRUSTED_ROUTED]:
                wait = limiter.take(client, tokens)
                if wait > 0:
                    retry = str(math.ceil(wait))
                    message = f"too many requests from this address; retry in {retry} s"
                    return "rate", _error(429, message, **{"Retry-After": retry})
        return None

    def _preflight(origin: str | None) -> tuple[str, web.Response]:
        headers = cors.preflight_headers(origin, settings)
        if origin is not None and not headers:
            return "origin", _error(403, "origin not allowed (STOCKAPP_CORS_ORIGINS)")
        return "", web.Response(status=204, headers={"Allow": cors.ALLOWED_METHODS, **headers})

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        try:
            refused = refusal(request, origin)
        except Exception as exc:  # noqa: BLE001 - a request nobody foresaw: refused, not a 500
            log.warning("refused a request the guard could not read: %s", type(exc).__name__)
            refused = "other", _error(400, "request not understood")
        if refused is None:
            response = await handler(request)
        else:
            reason, response = refused
            if reason:  # not a preflight answered
                REFUSED[reason] += 1
        if (
            origin
            and request.path.startswith("/api/")
            and not response.prepared
            and cors.understood(origin)
        ):
            # Also on the guard's refusals, so that a listed page can read why.
            for name, value in cors.cors_headers(origin, settings).items():
                response.headers.setdefault(name, value)
        return response

    web_driver.web_app.middlewares.append(guard)
