"""Finnhub's trades WebSocket (``wss://ws.finnhub.io?token=KEY``).

The dialogue, from Finnhub's documentation: one ``{"type":"subscribe","symbol":S}`` per
symbol; then ``{"type":"trade","data":[{"s","p","t" (epoch ms),"v","c" (condition codes)}]}``
frames, several trades each, and ``{"type":"ping"}`` frames that need no answer. A refused key
is refused at the upgrade (HTTP 401); too many symbols gives ``{"type":"error","msg":
"Subscribing to too many symbols"}`` (the free plan allows 50, one connection per key).

Finnhub gives trades no id. A trade's id here is its contents (time, price, size, conditions)
and its place among identical trades of the same millisecond on this connection: a trade
sent again after a reconnect gets the same id (and is a repeat), two identical trades in one
millisecond get two.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as urlquote

import orjson

from stockapp.models import Quote
from stockapp.sources.conditions import Counts, finnhub_counts
from stockapp.sources.live_feed import FeedRefused, FeedStats, log_once

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

FREE_PLAN_SYMBOLS = 50
# Identical trades are counted to tell them apart; the count of a millisecond this far behind
# the newest trade is not needed any more (the same trade is not sent again minutes later).
SAME_KEPT = 20_000
SAME_HORIZON_MS = 60_000


def parse_trade(item: Any) -> tuple[str, int, float, float, list[str]] | None:
    """``(symbol, ts ms, price, volume, conditions)`` of one element of a trade frame's
    ``data``, or None if it is not a readable trade."""
    if not isinstance(item, dict):
        return None
    symbol, ts, price, volume = item.get("s"), item.get("t"), item.get("p"), item.get("v")
    conditions = item.get("c") or []
    if not isinstance(symbol, str) or not symbol:
        return None
    if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
        return None
    if isinstance(price, bool) or not isinstance(price, int | float):
        return None
    if isinstance(volume, bool) or not isinstance(volume, int | float):
        return None
    if not (math.isfinite(price) and price > 0 and math.isfinite(volume) and volume >= 0):
        return None
    if not isinstance(conditions, list):
        return None
    return symbol, ts, float(price), float(volume), [str(c) for c in conditions]


class FinnhubDialogue:
    name = "finnhub"

    def __init__(
        self, base_url: str, key: str, symbols: list[str], stats: FeedStats, idle_seconds: float
    ) -> None:
        if not key:
            raise FeedRefused(
                "finnhub: no API key: set FINNHUB_API_KEY (or STOCKAPP_FINNHUB_API_KEY_FILE); "
                "a free key is at https://finnhub.io/register"
            )
        self.base_url = base_url
        self._key = key
        self.symbols = symbols
        self.stats = stats
        self.idle_seconds: float | None = idle_seconds
        self._same: Counter[tuple] = Counter()  # identical trades so far, this connection
        self._logged: set[str] = set()

    def __repr__(self) -> str:  # never show the key
        return f"FinnhubDialogue({self.base_url!r})"

    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/?token={urlquote(self._key, safe='')}"

    def refusal(self, status: int) -> str | None:
        if status in (401, 403):
            return (
                f"finnhub: the API key was refused (HTTP {status}): check FINNHUB_API_KEY; "
                "the sandbox key does not work on the WebSocket"
            )
        return None

    async def open(self, ws: aiohttp.ClientWebSocketResponse) -> list[Quote]:
        self._same.clear()
        for symbol in self.symbols:
            await ws.send_str(orjson.dumps({"type": "subscribe", "symbol": symbol}).decode())
        return []

    def frame(self, text: str) -> list[Quote]:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.stats.malformed += 1
            log_once(self._logged, "frame", "finnhub: a frame is not a JSON object: %.80r", text)
            return []
        kind = message.get("type")
        if kind == "trade":
            return self._trades(message.get("data"))
        if kind == "error":
            text = str(message.get("msg", ""))[:200]
            self.stats.service_errors[text] += 1
            if "too many symbols" in text.lower():
                raise FeedRefused(
                    f"finnhub: {text}: {len(self.symbols)} symbols asked for, and the free plan "
                    f"allows {FREE_PLAN_SYMBOLS} per key"
                )
            log.warning("finnhub: the service says: %s", text)
        return []  # "ping", and kinds this client does not use

    def _forget(self, newest: int) -> None:
        horizon = newest - SAME_HORIZON_MS
        self._same = Counter({k: n for k, n in self._same.items() if k[1] >= horizon})
        if len(self._same) > SAME_KEPT:  # a burst within the horizon: keep the newest half
            kept = sorted(self._same, key=lambda k: k[1])[len(self._same) // 2 :]
            self._same = Counter({k: self._same[k] for k in kept})

    def _trades(self, data: Any) -> list[Quote]:
        if not isinstance(data, list):
            self.stats.malformed += 1
            log_once(self._logged, "data", "finnhub: a trade frame without a list of trades")
            return []
        quotes = []
        for item in data:
            self.stats.trades += 1
            trade = parse_trade(item)
            if trade is None:
                self.stats.malformed += 1
                log_once(self._logged, "trade", "finnhub: an unreadable trade: %.120r", item)
                continue
            symbol, ts, price, volume, conditions = trade
            counts, unknown = finnhub_counts(conditions)
            self.stats.unknown_conditions += unknown
            if counts is Counts.NONE:
                self.stats.not_counted += 1
                continue
            volume_only = counts is Counts.VOLUME
            contents = (symbol, ts, price, volume, tuple(conditions))
            place = self._same[contents]
            self._same[contents] += 1
            if len(self._same) > SAME_KEPT:
                self._forget(ts)
            digest = hashlib.blake2b(repr(contents).encode(), digest_size=8).hexdigest()
            quotes.append(
                Quote(
                    symbol=symbol,
                    ts=ts,
                    price=price,
                    volume=volume,
                    source="finnhub",
                    id=f"fh:{ts}:{digest}:{place}",
                    volume_only=volume_only,
                )
            )
        return quotes
