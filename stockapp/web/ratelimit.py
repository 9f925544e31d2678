"""Per-client token buckets for the API's expensive queries (stockapp/web/guard.py applies them).

A client address gets ``burst`` tokens, refilled at ``rate`` per second; a request costs what
it asks of Cassandra and the worker: one token, and for candles one per 500 asked
(``limit=5000`` costs 10). Buckets are kept for the most recent ``max_clients`` addresses
only, so that memory stays bounded whatever the number of addresses.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

from stockapp.web.params import DEFAULT_LIMIT, MAX_LIMIT

CANDLES_PER_TOKEN = 500


def cost(path: str, query: dict[str, str]) -> int:
    """Tokens a request costs: 0 for cheap ones (meta, the OpenAPI file, tickets)."""
    if path.startswith("/api/candles/"):
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            limit = DEFAULT_LIMIT  # refused as a bad request anyway, after one token
        return max(1, math.ceil(min(max(limit, 1), MAX_LIMIT) / CANDLES_PER_TOKEN))
    if path in ("/api/symbols", "/api/signals", "/api/rules") or path.startswith(
        ("/api/quote/", "/api/rules/")
    ):
        return 1  # one Cassandra read (or write, for the rules)
    return 0


class RateLimiter:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float], max_clients: int = 10_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def take(self, client: str, tokens: int) -> float:
        """0 if the client may go on (the tokens are taken); else the seconds to wait."""
        now = self.clock()
        held, then = self.buckets.pop(client, (self.burst, now))
        held = min(self.burst, held + (now - then) * self.rate)
        wait = 0.0
        if held >= tokens:
            held -= tokens
        else:
            wait = (tokens - held) / self.rate
        self.buckets[client] = (held, now)
        if len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)  # the least recently seen
        return wait
