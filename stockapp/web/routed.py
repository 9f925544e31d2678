"""Requests one worker makes to another (forwarding a symbol's request to its owner, relaying
its live feed) carry ``X-Stockapp-Routed``: with ``STOCKAPP_WORKER_SECRET``, an HMAC-SHA256 of
the method, the path with its query and an expiry under that secret; without one, the bare
marker ``1``.

A valid signature is what lets a request skip the limits meant for clients (it was counted
where the client sent it) and be served where it arrives (the sender found this worker to be
the owner). The bare marker proves nothing, so it earns nothing but one thing: it is never
forwarded again, so that two workers that disagree about an owner (during a rebalance) cannot
pass a request back and forth for ever. Pure functions: stockapp/web/guard.py applies them.
"""

from __future__ import annotations

import hashlib
import hmac

ROUTED_HEADER = "X-Stockapp-Routed"
UNSIGNED = "1"
# A signature is made just before the request is sent: 30 s covers a slow owner, and the
# same again the clocks of two machines may differ by.
ROUTED_SECONDS = 30
CLOCK_SKEW_SECONDS = 30


def sign(secret: str, method: str, path_qs: str, now: float) -> str:
    """The header's value for a request of ``method`` to ``path_qs`` (raw, as sent)."""
    expiry = int(now) + ROUTED_SECONDS
    return f"{expiry}.{_mac(secret, method, path_qs, expiry)}"


def verify(value: str, secret: str, method: str, path_qs: str, now: float) -> bool:
    """Whether ``value`` signs this request and has not expired. Never raises: the value is
    whatever a client sent."""
    expiry_text, _, mac = value.partition(".")
    if not (expiry_text.isascii() and expiry_text.isdigit()) or len(expiry_text) > 12:
        return False
    expiry = int(expiry_text)
    if not now - CLOCK_SKEW_SECONDS <= expiry <= now + ROUTED_SECONDS + CLOCK_SKEW_SECONDS:
        return False
    expected = _mac(secret, method, path_qs, expiry).encode()
    return hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected)


def _mac(secret: str, method: str, path_qs: str, expiry: int) -> str:
    message = f"routed\n{method.upper()}\n{path_qs}\n{expiry}"
    return hmac.new(
        secret.encode(), message.encode("utf-8", "surrogateescape"), hashlib.sha256
    ).hexdigest()
