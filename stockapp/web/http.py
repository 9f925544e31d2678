"""What every API view shares: JSON errors, CORS, routing a symbol to the worker that owns it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import aiohttp.web
from faust.web import Request, Response, View
from yarl import URL

from stockapp.app import app
from stockapp.partitioning import partition_for
from stockapp.settings import get_settings
from stockapp.tables.definitions import symbol_state
from stockapp.web import cors, routed
from stockapp.web.guard import ROUTED_HEADER, TRUSTED_ROUTED
from stockapp.web.params import BadRequest

log = logging.getLogger(__name__)

WORKER_HEADER = "X-Stockapp-Worker"  # which worker answered (the owner, when forwarded)
STATE_TABLE = "symbol-state"


class NotFound(LookupError):
    pass


class Conflict(Exception):
    """Well-formed, but clashes with what is there (a 409)."""


class Busy(Exception):
    """Could not be done now for contention; the same request may succeed soon (a 503 with
    Retry-After)."""


# Read once: the files are not read again per request.
API_TOKEN = get_settings().api_secret
WORKER_SECRET = get_settings().inter_worker_secret


def internal_headers(method: str, url: URL) -> dict[str, str]:
    """Headers of a request this worker makes to another (forwarding, relaying): signed with
    the worker secret (stockapp/web/routed.py), or marked as routed when there is none, and
    with the token every worker shares, when one is set."""
    if WORKER_SECRET:
        mark = routed.sign(WORKER_SECRET, method, url.raw_path_qs, time.time())
    else:
        mark = routed.UNSIGNED
    headers = {ROUTED_HEADER: mark}
    if API_TOKEN:
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    return headers


def aiohttp_request(request: Request) -> aiohttp.web.Request:
    """The aiohttp request a view was given. Faust's web driver is aiohttp's (the default),
    which hands views ``aiohttp.web.Request`` objects; faust's abstract ``Request`` types only
    what every driver has (no path, host, remote, transport, nor the request's own mapping),
    so those are read through this (faust's driver casts the same way)."""
    return cast(aiohttp.web.Request, request)


def routed_here(request: Request) -> bool:
    """Another worker sent this request here (signed, or unsigned without a worker secret):
    it is served here, never forwarded again."""
    return ROUTED_HEADER in request.headers


def trusted_routed(request: Request) -> bool:
    """A worker signed this request: its client was counted where it arrived."""
    return bool(aiohttp_request(request).get(TRUSTED_ROUTED, False))


def cors_headers(request: Request) -> dict[str, str]:
    """Same origin needs nothing; another origin gets the header only if it is allowed."""
    return cors.cors_headers(request.headers.get("Origin"), get_settings())


def origin_allowed(request: Request) -> bool:
    """For WebSockets, which browsers open cross-origin without asking: same host or listed.
    (The Host header itself was checked against the allowed hosts before: a rebound DNS name
    does not get this far, stockapp/web/guard.py.)"""
    host = aiohttp_request(request).host
    return cors.same_origin_or_listed(request.headers.get("Origin"), host, get_settings())


def owner_url(symbol: str) -> URL | None:
    """The web address of the worker whose partitions hold the symbol; None: this worker (or
    no assignment yet, in which case this worker answers with what it has).

    Faust's ``table_route`` does the same lookup, but through the producer's metadata for the
    changelog topic, which a worker that never wrote to it may not have; the partition is the
    one the quotes' partitioner chose (murmur2, as Kafka's Java client).
    """
    partitions = symbol_state.partitions
    assert partitions is not None  # declared with the quotes topic's (tables/definitions.py)
    partition = partition_for(symbol.encode(), partitions)
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


@dataclass(frozen=True, slots=True)
class RawJson:
    """A handler's answer already encoded as JSON (sent as View.json would send it)."""

    data: bytes


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
        except Busy as exc:
            headers["Retry-After"] = "1"
            return self.json({"error": str(exc)}, status=503, headers=headers)
        except Exception:
            log.exception("request %s failed", aiohttp_request(request).path)
            return self.json({"error": "internal error"}, status=500, headers=headers)
        if isinstance(body, RawJson):
            # As faust's aiohttp driver answers View.json with orjson's bytes.
            response = aiohttp.web.Response(
                body=body.data,
                content_type="application/json",
                charset="utf-8",
                status=status,
                headers=headers,
            )
            return cast(Response, response)
        if isinstance(body, aiohttp.web.StreamResponse):  # forwarded from the owner
            # forward's faust Response, which the aiohttp driver makes an aiohttp one.
            return cast(Response, body)
        return self.json(body, status=status, headers=headers)

    async def forward(self, request: Request, owner: URL) -> Response | None:
        """The owner's answer to the same request; None if the owner cannot be reached."""
        url = owner.with_path(aiohttp_request(request).path).with_query(request.query)
        try:
            async with app.http_client.get(url, headers=internal_headers("GET", url)) as response:
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
