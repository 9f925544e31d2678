"""Alpaca's market-data stream (``wss://stream.data.alpaca.markets/v2/{iex|sip}``).

The dialogue, from Alpaca's documentation: the service says ``[{"T":"success","msg":
"connected"}]``; the client sends ``{"action":"auth","key":..,"secret":..}`` within 10 s and is
answered ``[{"T":"success","msg":"authenticated"}]``; a ``subscribe`` (trades, or minute bars
and their updates) is answered with the whole subscription. Data come as JSON arrays: trades
``{"T":"t","S","i" (id),"x" (exchange),"p","s" (size),"c" (conditions),"z" (tape),"t"
(RFC-3339, nanoseconds)}``, bars ``{"T":"b"|"u","S","o","h","l","c","v","t" (start)}``.
Errors are ``{"T":"error","code","msg"}`` (:data:`ERRORS`).

A trade's id is its exchange and Alpaca's trade id: a trade sent again after a reconnect is a
repeat. A minute bar's id is its start, so an updated bar (``u``, sent when a late trade
arrived) replaces the bar it updates in the candles still forming (docs/streaming.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from typing import TYPE_CHECKING, Any, Literal

import orjson

from stockapp.models import Quote
from stockapp.sources.conditions import Counts, alpaca_counts
from stockapp.sources.live_feed import (
    Dropped,
    FeedRefused,
    FeedStats,
    log_once,
    receive_text,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

FREE_PLAN_SYMBOLS = 30
Channel = Literal["trades", "bars"]

# What each documented error means for the user, and whether retrying can help.
ERRORS: dict[int, tuple[str, bool]] = {
    400: ("invalid syntax: a message this client sent was refused", True),
    401: ("not authenticated", True),
    402: (
        "auth failed: the key id or secret was refused (APCA_API_KEY_ID, APCA_API_SECRET_KEY; "
        "a paper-trading key works for market data too)",
        False,
    ),
    403: ("already authenticated", True),
    404: ("auth timeout: not authenticated within 10 s", True),
    405: ("symbol limit exceeded", False),
    406: (
        "connection limit exceeded: another connection (another stockapp, a notebook) uses "
        "this key; most plans allow one",
        True,
    ),
    407: ("slow client: the service dropped a connection that read too slowly", True),
    409: (
        "insufficient subscription: the plan does not include this feed (the free plan has "
        "--feed iex only)",
        False,
    ),
    410: ("invalid subscribe action for this feed", False),
    411: ("insufficient scope: the key may not use the market-data stream", False),
    500: ("internal error at Alpaca", True),
}

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$"
)


def epoch_ms(stamp: object) -> int | None:
    """Epoch milliseconds of an RFC-3339 time with up to nanoseconds (truncated, as the
    millisecond the trade happened in); None if it is not one."""
    if not isinstance(stamp, str):
        return None
    found = _RFC3339.match(stamp)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        tz = (
            dt.UTC
            if zone in ("Z", "z")
            else dt.timezone(
                (1 if zone[0] == "+" else -1)
                * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            )
        )
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        return None
    millis = int((fraction or "0").ljust(3, "0")[:3])
    return int(moment.timestamp()) * 1000 + millis


def _number(value: object, positive: bool) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        return None
    return float(value)


def trade_key(symbol: str, exchange: str, trade_id: int | str, stamp: str) -> str:
    """A trade's id: Alpaca's trade ids count per symbol and exchange and start again each
    day (and the FINRA facilities all report as exchange D), so the id also holds a digest of
    the symbol and the trade's time as sent. A trade sent again has the same three."""
    digest = hashlib.blake2b(f"{symbol}|{stamp}".encode(), digest_size=6).hexdigest()
    return f"apca:{exchange[:4]}:{str(trade_id)[:32]}:{digest}"


def parse_trade(item: dict) -> tuple[Quote, Counts, bool] | None:
    """A trade message as a quote, what its conditions count for and whether one of them was
    unknown; None if it cannot be read."""
    symbol, ts = item.get("S"), epoch_ms(item.get("t"))
    price, size = _number(item.get("p"), True), _number(item.get("s"), False)
    trade_id, exchange = item.get("i"), item.get("x", "")
    conditions = item.get("c") or []
    tape = item.get("z")
    if not isinstance(symbol, str) or not symbol or ts is None or price is None or size is None:
        return None
    if isinstance(trade_id, bool) or not isinstance(trade_id, int | str):
        return None
    if not isinstance(conditions, list) or not isinstance(exchange, str):
        return None
    counts, unknown = alpaca_counts([str(c) for c in conditions], tape)
    quote = Quote(
        symbol=symbol,
        ts=ts,
        price=price,
        volume=size,
        source="alpaca",
        id=trade_key(symbol, exchange, trade_id, str(item.get("t"))),
        volume_only=counts is Counts.VOLUME,
    )
    return quote, counts, unknown


def parse_bar(item: dict, seconds: int = 60) -> Quote | None:
    """A bar message (``b`` minute bar, ``u`` its update) as a quote, or None."""
    symbol, ts = item.get("S"), epoch_ms(item.get("t"))
    prices = [_number(item.get(k), True) for k in ("o", "h", "l", "c")]
    volume = _number(item.get("v"), False)
    if not isinstance(symbol, str) or not symbol or ts is None or volume is None:
        return None
    o, h, low, c = prices
    if o is None or h is None or low is None or c is None:
        return None
    if not low <= min(o, c) <= max(o, c) <= h:
        return None
    return Quote(
        symbol=symbol,
        ts=ts,
        price=c,
        volume=volume,
        open=o,
        high=h,
        low=low,
        bar_seconds=seconds,
        source="alpaca",
    )


def _messages(text: str) -> list[Any] | None:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):  # the documentation promises arrays; be lenient
        data = [data]
    return data if isinstance(data, list) else None


class AlpacaDialogue:
    name = "alpaca"
    idle_seconds: float | None = None  # quiet symbols are normal: the heartbeat tells

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        feed: str,
        symbols: list[str],
        stats: FeedStats,
        channel: Channel = "trades",
    ) -> None:
        if not key_id or not secret:
            raise FeedRefused(
                "alpaca: no key: set APCA_API_KEY_ID and APCA_API_SECRET_KEY (or their "
                "STOCKAPP_ALPACA_API_*_FILE); a free key is at https://alpaca.markets"
            )
        self.base_url = base_url
        self._key_id = key_id
        self._secret = secret
        self.feed = feed
        self.symbols = symbols
        self.stats = stats
        self.channel = channel
        self._logged: set[str] = set()
        self._subscribing = False

    def __repr__(self) -> str:  # never show the key
        return f"AlpacaDialogue({self.base_url!r}, feed={self.feed!r})"

    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.feed}"

    def refusal(self, status: int) -> str | None:
        if status in (401, 403):
            return f"alpaca: the connection was refused (HTTP {status}): check the key"
        if status == 404:
            return f"alpaca: no such stream: {self.url()} (--feed iex or sip)"
        return None

    async def open(self, ws: aiohttp.ClientWebSocketResponse) -> list[Quote]:
        await self._expect(ws, "connected")
        auth = {"action": "auth", "key": self._key_id, "secret": self._secret}
        await ws.send_str(orjson.dumps(auth).decode())
        await self._expect(ws, "authenticated")
        if self.channel == "trades":
            subscribe: dict[str, Any] = {"action": "subscribe", "trades": self.symbols}
        else:
            subscribe = {"action": "subscribe", "bars": self.symbols, "updatedBars": self.symbols}
        await ws.send_str(orjson.dumps(subscribe).decode())
        self._subscribing = True  # a 400 now is about the symbols: sending them again won't help
        try:
            return await self._expect(ws, "subscription")
        finally:
            self._subscribing = False

    async def _expect(self, ws: aiohttp.ClientWebSocketResponse, what: str) -> list[Quote]:
        """Read until the control message ``what``; data that come first are kept."""
        quotes: list[Quote] = []
        while True:
            text = await receive_text(ws, None)
            messages = _messages(text)
            if messages is None:
                self.stats.malformed += 1
                continue
            for message in messages:
                if not isinstance(message, dict):
                    continue
                kind = message.get("T")
                if kind == "error":
                    self._error(message)
                elif what == "subscription" and kind == "subscription":
                    return quotes + self._data(messages[messages.index(message) + 1 :])
                elif kind == "success" and message.get("msg") == what:
                    return quotes
                elif kind not in ("success", "subscription"):
                    quotes += self._data([message])

    def frame(self, text: str) -> list[Quote]:
        messages = _messages(text)
        if messages is None:
            self.stats.malformed += 1
            log_once(self._logged, "frame", "alpaca: a frame is not JSON: %.80r", text)
            return []
        return self._data(messages)

    def _data(self, messages: list[Any]) -> list[Quote]:
        quotes = []
        for message in messages:
            kind = message.get("T") if isinstance(message, dict) else None
            if kind == "t":
                self.stats.trades += 1
                parsed = parse_trade(message)
                if parsed is None:
                    self.stats.malformed += 1
                    log_once(self._logged, "trade", "alpaca: an unreadable trade: %.120r", message)
                    continue
                quote, counts, unknown = parsed
                self.stats.unknown_conditions += unknown
                if counts is Counts.NONE:
                    self.stats.not_counted += 1
                    continue
                quotes.append(quote)
            elif kind in ("b", "u"):
                self.stats.trades += 1
                bar = parse_bar(message)
                if bar is None:
                    self.stats.malformed += 1
                    log_once(self._logged, "bar", "alpaca: an unreadable bar: %.120r", message)
                    continue
                quotes.append(bar)
            elif kind in ("c", "x"):  # corrections and cancels: candles are not revised by them
                self.stats.not_applied += 1
                log_once(
                    self._logged,
                    "correction",
                    "alpaca: a trade correction or cancel is not applied to candles",
                )
            elif kind == "error":
                self._error(message)
            elif kind not in ("success", "subscription"):
                self.stats.malformed += 1
                log_once(self._logged, "kind", "alpaca: a message of unknown kind: %.120r", message)
        return quotes

    def _error(self, message: dict) -> None:
        code = message.get("code")
        text = str(message.get("msg", ""))[:200]
        self.stats.service_errors[f"{code} {text}"] += 1
        known = ERRORS.get(code) if isinstance(code, int) else None
        meaning, retry = known if known else (text or "unknown error", True)
        if code == 403:  # already authenticated: nothing is wrong
            return
        if code == 400 and self._subscribing:
            asked = ", ".join(self.symbols)[:200]
            meaning = f"invalid syntax: the subscription of {asked} was refused"
            retry = False
        if code == 405:
            meaning = (
                f"{meaning}: {len(self.symbols)} symbols asked for; the free plan allows "
                f"{FREE_PLAN_SYMBOLS}"
            )
        if not retry:
            raise FeedRefused(f"alpaca: error {code}: {meaning}")
        raise Dropped(f"error {code}: {meaning}")
