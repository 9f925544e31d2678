"""The signature on each webhook POST, for the receiver to know it came from us and was not
changed or replayed long after (docs/signals.md, "Verifying a POST").

``X-Stockapp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed by
STOCKAPP_SIGNAL_WEBHOOK_SECRET: the scheme payment providers and Git hosts use, so receivers
know it. The timestamp is inside the signed text: a receiver that refuses old ones (five
minutes is usual) refuses a captured POST sent again later. Each try is signed anew.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Stockapp-Signature"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
