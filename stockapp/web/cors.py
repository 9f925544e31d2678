"""Which other origins may call the API (``STOCKAPP_CORS_ORIGINS``), and what they are told.

Same origin needs nothing: the chart is served by the worker. A listed origin (or any, with
``*``) gets ``Access-Control-Allow-Origin`` on API answers and on the answers to its preflights
(``OPTIONS``), which allow the headers and methods the API uses; an origin not listed gets no
CORS header at all, so the browser keeps the answer from its page. Pure functions of the
Origin header and the settings.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
# What a page on another origin may read of an answer besides the simple headers.
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate, X-Stockapp-Worker"
PREFLIGHT_MAX_AGE = "600"


def understood(origin: str) -> bool:
    """Whether an Origin header is one a browser could send: ``null`` or scheme://host[:port].
    Anything else (``http://[``, bytes that are not ASCII) is refused, not guessed at."""
    if origin == "null":
        return True
    if not origin.isascii():
        return False
    try:
        url = URL(origin)
        url.port  # noqa: B018 - a port out of range raises here
        return bool(url.scheme and url.host)
    except (ValueError, TypeError):
        return False


def listed(origin: str | None, settings: Any) -> bool:
    allowed = settings.cors_origins
    return bool(origin) and ("*" in allowed or origin in allowed)


def cors_headers(origin: str | None, settings: Any) -> dict[str, str]:
    """For an API answer: the header for a listed origin, nothing for others."""
    if not listed(origin, settings):
        return {}
    return {
        "Access-Control-Allow-Origin": str(origin),
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def preflight_headers(origin: str | None, settings: Any) -> dict[str, str]:
    """For the answer to ``OPTIONS``: what a listed origin may send; nothing for others."""
    if not listed(origin, settings):
        return {}
    return {
        **cors_headers(origin, settings),
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }


def same_origin_or_listed(origin: str | None, host: str | None, settings: Any) -> bool:
    """For WebSockets, which browsers open cross-origin without a preflight: no Origin (not a
    browser), the page's own host, or a listed origin. An origin that does not parse is
    refused."""
    if not origin:
        return True
    if not understood(origin):
        return False
    if "*" in settings.cors_origins or origin in settings.cors_origins:
        return True
    return origin != "null" and URL(origin).host_port_subcomponent == host
