"""What every API view shares: JSON errors, CORS, routing a symbol to the worker that owns it."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import aiohttp.web
from faust.web import Request, Response, View
from yarl import URL

from stockapp.app import app
from stockapp.partitioning import partition_for
from stockapp.settings import get_settings
from stockapp.tables.definitions import symbol_state
from stockapp.web.guard import ROUTED_HEADER
from stockapp.web.params import BadRequest

log = logging.getLogger(__name__)

WORKER_HEADER = "X-Stockapp-Worker"  # which worker answered (the owner, when forwarded)
STATE_TABLE = "symbol-state"


class NotFound(LookupError):
    pass


class Conflict(Exception):
    """Well-formed, but clashes with what is there (a 409)."""


API_TOKEN = get_settings().api_secret  # read once: the file is not read again per request


def internal_headers() -> dict[str, str]:
    """Headers of a request this worker makes to another (forwarding, relaying): marked as
    routed, and with the token every worker shares, when one is set."""
    headers = {ROUTED_HEADER: "1"}
    if API_TOKEN:
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    return headers


def cors_headers(request: Request) -> dict[str, str]:
    """Same origin needs nothing; another origin gets the header only if it is allowed."""
    origin = request.headers.get("Origin")
    allowed = get_settings().cors_origins
    if origin and ("*" in allowed or origin in allowed):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def origin_allowed(request: Request) -> bool:
    """For WebSockets, which browsers open cross-origin without asking: same host or listed.
    (The Host header itself was checked against the allowed hosts before: a rebound DNS name
    does not get this far, stockapp/web/guard.py.)"""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    allowed = get_settings().cors_origins
    return (
        URL(origin).host_port_subcomponent == request.host or "*" in allowed or (origin in allowed)
    )


def owner_url(symbol: str) -> URL | None:
    """The web address of the worker whose partitions hold the symbol; None: this worker (or
    no assignment yet, in which case this worker answers with what it has).

    Faust's ``table_route`` does the same lookup, but through the producer's metadata for the
    changelog topic, which a worker that never wrote to it may not have; the partition is the
    one the quotes' partitioner chose (murmur2, as Kafka's Java client).
    """
    partition = partition_for(symbol.encode(), symbol_state.partitions)
    topic = symbol_state.changelog_topic_name
    try:
        metadata = app.router.table_metadata(STATE_TABLE)
    except (KeyError, AttributeError):
        return None
    own = URL(app.conf.canonical_url)
    for host, topics in metadata.items():
        if partition in topics.get(topic, ()):
            url = URL(host)
            return None if (url.host, url.port) == (own.host, own.port) else url
    return None


class ApiView(View):
    """Handlers return JSON-able values or raise BadRequest/NotFound; never a bare 500 page."""

    async def respond(
        self, request: Request, handler: Any, *args: Any, status: int = 200
    ) -> Response:
        headers = {**cors_headers(request), WORKER_HEADER: str(app.conf.canonical_url)}
        try:
            body = await handler(*args)
        except BadRequest as exc:
            return self.json({"error": str(exc)}, status=400, headers=headers)
        except NotFound as exc:
            return self.json({"error": str(exc)}, status=404, headers=headers)
        except Conflict as exc:
            return self.json({"error": str(exc)}, status=409, headers=headers)
        except Exception:
            log.exception("request %s failed", request.path)
            return self.json({"error": "internal error"}, status=500, headers=headers)
        if isinstance(body, aiohttp.web.StreamResponse):  # forwarded from the owner
            return body
        return self.json(body, status=status, headers=headers)

    async def forward(self, request: Request, owner: URL) -> Response | None:
        """The owner's answer to the same request; None if the owner cannot be reached."""
        url = owner.with_path(request.path).with_query(request.query)
        try:
            async with app.http_client.get(url, headers=internal_headers()) as response:
                body = await response.read()
                return self.bytes(
                    body,
                    content_type=response.content_type,
                    status=response.status,
                    headers={
                        **cors_headers(request),
                        WORKER_HEADER: response.headers.get(WORKER_HEADER, str(owner)),
                    },
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("owner %s of a symbol did not answer: %s", owner, type(exc).__name__)
            return None
