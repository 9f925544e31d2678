"""A local stand-in for Alpaca's market data: the v2 stock stream and the historical bars REST.

The stream follows docs.alpaca.markets/docs/streaming-market-data and
real-time-stock-pricing-data: every server message is a JSON array; control messages
(success, error, subscription) come one per array; errors carry the documented code and msg.
Frames are JSON text only. Both official SDKs ask for msgpack with `Content-Type:
application/msgpack` on the upgrade; this fake records that header and still answers JSON, so a
client under test must not ask for msgpack (or must cope with JSON).

The REST side serves GET /v2/stocks/bars (and /v2/stocks/{symbol}/bars) from `bars`, paging
with an opaque next_page_token as documented. Only timeframe 1Min is served.

What the stream sends besides protocol replies comes from scripts (tests/fake_feeds_script.py);
a connection's script starts once it is authenticated, so connections refused during the
handshake (402, 404, 406, 409) use no script.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fake_feeds_script import ConnectionRecord, FeedServer, Script, Session

ERROR_MESSAGES: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    500: "internal error",
}
CONNECTED: list[dict[str, Any]] = [{"T": "success", "msg": "connected"}]
AUTHENTICATED: list[dict[str, Any]] = [{"T": "success", "msg": "authenticated"}]

# The stock stream's channels as the subscription reply lists them. corrections and
# cancelErrors are not subscribable: they follow trades.
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
STOCK_FEEDS = frozenset({"iex", "sip", "delayed_sip", "test"})
REST_FEEDS = frozenset({"iex", "sip", "delayed_sip", "boats", "overnight", "otc"})
BAR_FIELDS = ("t", "o", "h", "l", "c", "v", "n", "vw")
SECRET_HEADERS = frozenset({"apca-api-secret-key", "authorization"})
MAX_LIMIT = 10_000
NEW_YORK = ZoneInfo("America/New_York")
# Without a SIP subscription, SIP history is refused inside the last 15 minutes [AD-FAQ].
SIP_DELAY = timedelta(minutes=15)


def error(code: int) -> list[dict[str, Any]]:
    return [{"T": "error", "code": code, "msg": ERROR_MESSAGES[code]}]


def trade(
    symbol: str,
    price: float,
    size: int,
    t: str,
    trade_id: int,
    conditions: Sequence[str] = ("@",),
    exchange: str = "V",
    tape: str = "C",
) -> dict[str, Any]:
    """A stream trade. `t` is RFC-3339 with ns, e.g. "2026-12-04T15:51:44.208123456Z".
    The defaults are an IEX (V) regular sale on tape C; CTA tapes A/B use " " not "@"."""
    return {
        "T": "t",
        "S": symbol,
        "i": trade_id,
        "x": exchange,
        "p": price,
        "s": size,
        "c": list(conditions),
        "z": tape,
        "t": t,
    }


def bar(
    symbol: str,
    t: str,
    o: float,
    h: float,
    l: float,  # noqa: E741 - Alpaca's field name
    c: float,
    v: int,
    n: int = 1,
    vw: float | None = None,
) -> dict[str, Any]:
    """A stream minute bar labelled by its start `t`. Also usable in `bars` for the REST side,
    which serves only the BAR_FIELDS. vw defaults to c (exact for a one-trade bar)."""
    return {
        "T": "b",
        "S": symbol,
        "o": o,
        "h": h,
        "l": l,
        "c": c,
        "v": v,
        "t": t,
        "n": n,
        "vw": c if vw is None else vw,
    }


@dataclass
class AlpacaConnection(ConnectionRecord):
    feed: str = ""
    content_type: str = ""  # the upgrade's Content-Type; msgpack is asked for but not served
    authenticated: bool = False
    subscriptions: dict[str, list[str]] = field(
        default_factory=lambda: {channel: [] for channel in CHANNELS}
    )
    errors: list[int] = field(default_factory=list)  # error codes sent, in order

    @property
    def trades(self) -> list[str]:
        return self.subscriptions["trades"]

    @property
    def bars(self) -> list[str]:
        return self.subscriptions["bars"]

    def symbol_count(self, channel: str) -> int:
        return len(self.subscriptions.get(channel, []))


class BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def parse_time(text: str, name: str) -> datetime:
    """RFC-3339 or YYYY-MM-DD. A bare date is taken as 00:00 UTC (the docs do not say)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        # fromisoformat keeps microseconds of a ns stamp, enough to order minute bars.
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(422, {"message": f"invalid {name}: {text}"}) from None
    if parsed.tzinfo is None:
        raise BadRequest(422, {"message": f"invalid {name}: {text}"})
    return parsed


def page_token(symbol: str, t: str) -> str:
    # Opaque to clients, like Alpaca's base64 tokens; it names the last bar served.
    return base64.urlsafe_b64encode(json.dumps([symbol, t]).encode()).decode()


def read_page_token(token: str) -> tuple[str, str]:
    try:
        symbol, t = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise BadRequest(400, {"message": "invalid page token"}) from None
    return str(symbol), str(t)


class FakeAlpaca(FeedServer[AlpacaConnection]):
    def __init__(
        self,
        key: str = "test-key",
        secret: str = "test-secret",
        scripts: Sequence[Script] | None = None,
        feeds: Iterable[str] = ("iex",),
        max_symbols: int = 30,
        max_connections: int = 1,
        bars: dict[str, list[dict[str, Any]]] | None = None,
        page_size: int = 1000,
        rate_limit_every: int = 0,
        auth_timeout: float = 10.0,
        ping_every: float = 1.0,
    ) -> None:
        super().__init__(scripts, ping_every)
        self.key = key
        self.secret = secret
        self.feeds = set(feeds)
        self.max_symbols = max_symbols
        self.max_connections = max_connections
        self.bars: dict[str, list[dict[str, Any]]] = bars if bars is not None else {}
        self.page_size = page_size
        self.rate_limit_every = rate_limit_every
        self.auth_timeout = auth_timeout
        self.rest_requests: list[dict[str, Any]] = []
        self._counted_requests = 0

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2"

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/stocks/bars", self._bars)
        app.router.add_get("/v2/stocks/{symbol}/bars", self._bars)
        app.router.add_get("/v2/{feed}", self._stream)

    # -- stream --------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        feed = request.match_info["feed"]
        if feed not in STOCK_FEEDS:
            raise web.HTTPNotFound()
        conn = AlpacaConnection(feed=feed, content_type=request.headers.get("Content-Type", ""))
        session = await self.open_session(request, conn)
        await self._send(session, CONNECTED)
        key = request.headers.get("APCA-API-KEY-ID")
        if key is not None:
            # Header auth is documented, but not what the server answers to it; the fake
            # answers as if the auth message had been sent.
            await self._auth(session, key, request.headers.get("APCA-API-SECRET-KEY", ""))
        else:
            session.spawn(self._auth_watchdog(session))
        await self.converse(
            session,
            lambda text: self._on_text(session, text),
            lambda data: self._on_binary(session, data),
        )
        return session.ws

    async def _send(self, session: Session, payload: list[dict[str, Any]]) -> None:
        conn = session.conn
        assert isinstance(conn, AlpacaConnection)
        if payload and payload[0].get("T") == "error":
            conn.errors.append(payload[0]["code"])
        await session.send(payload)

    async def _fail(self, session: Session, code: int) -> None:
        """The handshake errors end the session."""
        await self._send(session, error(code))
        await session.close()

    async def _auth_watchdog(self, session: Session) -> None:
        await asyncio.sleep(self.auth_timeout)
        conn = session.conn
        assert isinstance(conn, AlpacaConnection)
        if not conn.authenticated and not session.ws.closed:
            await self._fail(session, 404)

    async def _on_binary(self, session: Session, data: bytes) -> None:
        # A msgpack-encoded request: this fake speaks JSON only.
        session.conn.received.append(data)
        await self._send(session, error(400))

    async def _on_text(self, session: Session, text: str) -> None:
        conn = session.conn
        assert isinstance(conn, AlpacaConnection)
        try:
            message = json.loads(text)
        except ValueError:
            conn.received.append(text)
            await self._send(session, error(400))
            return
        conn.received.append(message)
        if not isinstance(message, dict):
            await self._send(session, error(400))
            return
        action = message.get("action")
        if action == "auth":
            key, secret = message.get("key"), message.get("secret")
            if not isinstance(key, str) or not isinstance(secret, str):
                await self._send(session, error(400))
            elif conn.authenticated:
                await self._send(session, error(403))
            else:
                await self._auth(session, key, secret)
        elif action in ("subscribe", "unsubscribe"):
            if not conn.authenticated:
                await self._send(session, error(401))
            else:
                await self._subscribe(session, conn, message, add=action == "subscribe")
        else:
            await self._send(session, error(400))

    async def _auth(self, session: Session, key: str, secret: str) -> None:
        conn = session.conn
        assert isinstance(conn, AlpacaConnection)
        if key != self.key or secret != self.secret:
            await self._fail(session, 402)
            return
        if conn.feed not in self.feeds and conn.feed != "test":
            await self._fail(session, 409)
            return
        # The limit is per user and endpoint, and the server only knows the user once the
        # credentials are in, so it is checked here rather than on connect.
        others = [
            c
            for c in self.connections
            if c is not conn and c.feed == conn.feed and c.authenticated and not c.closed
        ]
        if len(others) >= self.max_connections:
            await self._fail(session, 406)
            return
        conn.authenticated = True
        await self._send(session, AUTHENTICATED)

        async def keepalive() -> None:
            # Alpaca's data messages carry no keep-alive; WebSocket pings are the only option.
            if not session.ws.closed:
                await session.ws.ping()

        self.play(session, keepalive)

    async def _subscribe(
        self, session: Session, conn: AlpacaConnection, message: dict[str, Any], add: bool
    ) -> None:
        wanted: dict[str, list[str]] = {}
        for channel in CHANNELS:
            symbols = message.get(channel, [])
            if not isinstance(symbols, list) or not all(
                isinstance(s, str) and s and not any(ch.isspace() for ch in s) for s in symbols
            ):
                await self._send(session, error(400))
                return
            wanted[channel] = symbols
        updated = {channel: list(symbols) for channel, symbols in conn.subscriptions.items()}
        for channel, symbols in wanted.items():
            for symbol in symbols:
                if add and symbol not in updated[channel]:
                    updated[channel].append(symbol)
                elif not add and symbol in updated[channel]:
                    updated[channel].remove(symbol)
        distinct = {symbol for symbols in updated.values() for symbol in symbols}
        if add and len(distinct) > self.max_symbols:
            await self._send(session, error(405))
            return
        conn.subscriptions = updated
        conn.changed.set()
        reply: dict[str, Any] = {"T": "subscription", **updated}
        reply["corrections"] = list(updated["trades"])
        reply["cancelErrors"] = list(updated["trades"])
        await self._send(session, [reply])

    # -- REST ----------------------------------------------------------------------------

    async def _bars(self, request: web.Request) -> web.Response:
        record: dict[str, Any] = {
            "path": request.path,
            "query": dict(request.query),
            "headers": {
                k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS
            },
        }
        self.rest_requests.append(record)
        status, body, headers = self._answer_bars(request)
        record["status"] = status
        return web.json_response(body, status=status, headers=headers)

    def _answer_bars(self, request: web.Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        if (
            request.headers.get("APCA-API-KEY-ID") != self.key
            or request.headers.get("APCA-API-SECRET-KEY") != self.secret
        ):
            return 403, {"message": "forbidden."}, {}
        # Only requests that got past auth count towards the limit, as the limit is per
        # account. Retry-After is not documented by Alpaca; the fake sends it to test clients
        # that honour it (the official SDKs ignore headers and wait a fixed time).
        self._counted_requests += 1
        if self.rate_limit_every > 0 and self._counted_requests % self.rate_limit_every == 0:
            return 429, {"message": "too many requests."}, {"Retry-After": "1"}
        single = request.match_info.get("symbol")
        try:
            body = self._page(request.query, single)
        except BadRequest as bad:
            return bad.status, bad.body, {}
        return 200, body, {}

    def _page(self, query: Any, single: str | None) -> dict[str, Any]:
        if single is not None:
            symbols = [single]
        else:
            symbols = [s for s in query.get("symbols", "").split(",") if s]
            if not symbols:
                raise BadRequest(422, {"message": "missing symbols"})
        if query.get("timeframe") not in ("1Min", "1T"):
            raise BadRequest(422, {"message": "invalid timeframe"})
        feed = query.get("feed") or ("sip" if "sip" in self.feeds else "iex")
        if feed not in REST_FEEDS:
            raise BadRequest(422, {"message": f"invalid feed: {feed}"})
        now = datetime.now(UTC)
        # The documented defaults: from the start of the current (New York) day until now.
        start_default = datetime.combine(now.astimezone(NEW_YORK).date(), time(), NEW_YORK)
        start = parse_time(query["start"], "start") if "start" in query else start_default
        end = parse_time(query["end"], "end") if "end" in query else now
        if feed == "sip" and "sip" not in self.feeds and end > now - SIP_DELAY:
            raise BadRequest(
                422,
                {
                    "code": 42210000,
                    "message": "subscription does not permit querying recent SIP data",
                },
            )
        try:
            limit = int(query.get("limit", "1000"))
        except ValueError:
            raise BadRequest(422, {"message": "invalid limit"}) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(422, {"message": "invalid limit"})
        limit = min(limit, self.page_size)
        sort = query.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise BadRequest(422, {"message": "invalid sort"})
        sign = 1 if sort == "asc" else -1

        # Every matching bar in response order (symbol, then time), keyed for resumption.
        ordered: list[tuple[tuple[str, int], str, dict[str, Any]]] = []
        for symbol in sorted(set(symbols)):
            for item in self.bars.get(symbol, []):
                stamp = parse_time(item["t"], "bar t")
                if start <= stamp <= end:
                    key = (symbol, sign * int(stamp.timestamp() * 1_000_000))
                    ordered.append((key, symbol, item))
        ordered.sort(key=lambda entry: entry[0])
        if "page_token" in query:
            after_symbol, after_t = read_page_token(query["page_token"])
            stamp = parse_time(after_t, "page_token")
            after = (after_symbol, sign * int(stamp.timestamp() * 1_000_000))
            ordered = [entry for entry in ordered if entry[0] > after]

        page, rest = ordered[:limit], ordered[limit:]
        served: dict[str, list[dict[str, Any]]] = {}
        for _, symbol, item in page:
            served.setdefault(symbol, []).append({k: item[k] for k in BAR_FIELDS if k in item})
        token = page_token(page[-1][1], page[-1][2]["t"]) if rest else None
        if single is not None:
            return {"bars": served.get(single, []), "symbol": single, "next_page_token": token}
        return {"bars": served, "next_page_token": token}
