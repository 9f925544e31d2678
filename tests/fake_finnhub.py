"""A local stand-in for Finnhub's trades WebSocket (wss://ws.finnhub.io?token=KEY).

Protocol facts and their sources are in the feeds research notes: the token goes in the query
string and a bad one is refused with HTTP 401 on the upgrade; the client sends one
{"type":"subscribe","symbol":S} per symbol; the server sends {"type":"trade","data":[...]},
{"type":"ping"} keep-alives and {"type":"error","msg":...}. The 50-symbol limit and the
"Subscribing to too many symbols" text were measured by third parties, not documented.

What the server sends besides protocol replies comes from scripts (tests/fake_feeds_script.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_feeds_script import ConnectionRecord, FeedServer, Script, Session

PING: dict[str, Any] = {"type": "ping"}
TOO_MANY_SYMBOLS: dict[str, Any] = {"type": "error", "msg": "Subscribing to too many symbols"}


def trade(
    symbol: str, price: float, ts_ms: int, volume: float, conditions: list[str] | None = None
) -> dict[str, Any]:
    """One element of a trade message's "data". `c` is left out when None, as in Finnhub's
    crypto example; US stock trades carry it (strings of numbers, e.g. ["1","24","12"])."""
    item: dict[str, Any] = {"p": price, "s": symbol, "t": ts_ms, "v": volume}
    if conditions is not None:
        item["c"] = list(conditions)
    return item


def trades_message(*trades: dict[str, Any]) -> dict[str, Any]:
    return {"type": "trade", "data": list(trades)}


@dataclass
class FinnhubConnection(ConnectionRecord):
    token: str = ""
    subscribed: list[str] = field(default_factory=list)  # current set, in subscription order

    def symbol_count(self, channel: str) -> int:
        return len(self.subscribed)


class FakeFinnhub(FeedServer[FinnhubConnection]):
    def __init__(
        self,
        tokens: Iterable[str] = ("test-token",),
        scripts: Sequence[Script] | None = None,
        max_symbols: int = 50,
        ping_every: float = 1.0,
    ) -> None:
        super().__init__(scripts, ping_every)
        self.tokens = set(tokens)
        self.max_symbols = max_symbols
        self.rejected: list[str] = []  # tokens refused with 401, in order

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        # "ws://host:port?token=" and "ws://host:port/?token=" both request the path "/".
        app.router.add_get("/", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        if token not in self.tokens:
            self.rejected.append(token)
            # Refused before the upgrade, so the client gets a handshake error, not a socket.
            return web.Response(status=401, text="401 Unauthorized")
        conn = FinnhubConnection(token=token)
        session = await self.open_session(request, conn)

        async def keepalive() -> None:
            await session.send(PING)

        self.play(session, keepalive)
        await self.converse(session, lambda text: self._on_text(session, conn, text))
        return session.ws

    async def _on_text(self, session: Session, conn: FinnhubConnection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            # Finnhub's reaction to a malformed frame is undocumented; record it and go on.
            conn.received.append(text)
            return
        conn.received.append(message)
        if not isinstance(message, dict):
            return
        symbol = message.get("symbol")
        if not isinstance(symbol, str):
            return
        match message.get("type"):
            case "subscribe":
                if symbol in conn.subscribed:
                    return
                if len(conn.subscribed) >= self.max_symbols:
                    await session.send(TOO_MANY_SYMBOLS)
                    return
                conn.subscribed.append(symbol)
                conn.changed.set()
            case "unsubscribe":
                if symbol in conn.subscribed:
                    conn.subscribed.remove(symbol)
                    conn.changed.set()
