"""Live push: a WebSocket per chart, fed by the processor as each batch is applied and stored.

``GET /api/live/{symbol}?interval=1m`` upgrades to a WebSocket that receives JSON messages
``{"type": "candle", "symbol", "interval", "candle": {...}, "sent_at": <epoch ms>}`` and
``{"type": "signal", ..., "signal": {...}}`` for each rule that fired on its candles.

A forming candle is provisional by nature: it is pushed as soon as a batch that changed it is
applied, before the batch is stored. A closed candle is pushed only once it is in Cassandra
(before the rest of the commit), followed by the forming ones after it; a batch that closes a
candle of a subscription pushes that subscription's candles only then (docs/web.md, "Live
push latency").
A batch that fails to store is applied again from the stored state and pushes the same forming
candle again. The worker that owns the symbol's partition produces them; any other worker
relays its stream.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from faust.web import Request

from stockapp.app import app
from stockapp.settings import get_settings
from stockapp.stats import ProcessorView
from stockapp.tables.candle import Candle
from stockapp.tables.signals.signal import Signal
from stockapp.web.http import (
    ApiView,
    aiohttp_request,
    internal_headers,
    origin_allowed,
    owner_url,
    routed_here,
    trusted_routed,
)
from stockapp.web.params import BadRequest, parse_interval, parse_symbol
from stockapp.web.payload import from_candle

log = logging.getLogger(__name__)

# Changes (each a batch's messages for one client) a client may fall behind before it is
# dropped. Counted in changes, not messages: a catching-up worker may close hundreds of a
# symbol's candles in one batch, and a client that reads fast must not be dropped for that.
QUEUE_SIZE = 256
# The kernel's send buffer of a live socket. Linux grows it up to tcp_wmem's maximum (4 MiB)
# for a client that does not read, per client; a fixed size bounds that, and makes a stalled
# client block the send (and so be noticed) after a few hundred messages.
SEND_BUFFER_BYTES = 64 * 1024


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[dict]] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, messages: list[dict]) -> None:
        try:
            self.queue.put_nowait(messages)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    """Subscribers by (symbol, interval); ``processor()`` gives the worker's processor (or
    None before it starts), whose forming candles follow each change."""

    def __init__(self, processor: Callable[[], ProcessorView | None]) -> None:
        self.processor = processor
        self.subscribers: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self.clients = 0  # open live connections, served here or relayed from the owner
        self.dropped = 0  # clients disconnected for being too slow, since the start
        self.per_client: Counter[str] = Counter()  # open connections by client address
        self.refused: Counter[str] = Counter()  # handshakes refused: worker or client limit
        # The subscribers whose forming candles went out when the batch being stored was
        # applied (one who subscribed since gets them once it is stored).
        self.pushed_early: dict[tuple[str, str], set[Subscriber]] = {}
        # By subscription, the start (s) of the last candle pushed as closed. A clock close is
        # pushed once in Cassandra; if the rest of its commit fails, it is dropped and the
        # window reopens until a later tick closes it again: its forming version must not
        # follow the closed one to the charts (closed is final there). The next close of it
        # is pushed, as an update of the same bar.
        self.closed_through: dict[tuple[str, str], int] = {}

    def reserve(self, client: str | None) -> tuple[int, str] | None:
        """Take a connection's place before its handshake, or say why not (status, message).
        Checking and taking happen with no await between them, so handshakes that overlap
        cannot all pass the check and then overshoot the limits. ``client``: the address to
        count it against; None for a relay a worker signed (its client was counted where it
        arrived)."""
        settings = get_settings()
        if self.clients >= settings.live_max_connections:
            self.refused["worker"] += 1
            return 503, "too many live connections on this worker"
        if client is not None and self.per_client[client] >= settings.live_max_per_client:
            self.refused["client"] += 1
            return 429, "too many live connections from this address"
        self.clients += 1
        if client is not None:
            self.per_client[client] += 1
        return None

    def release(self, client: str | None) -> None:
        self.clients -= 1
        if client is not None:
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]

    def subscribe(self, symbol: str, interval: str) -> Subscriber:
        subscriber = Subscriber()
        self.subscribers[(symbol, interval)].add(subscriber)
        return subscriber

    def unsubscribe(self, symbol: str, interval: str, queue: Subscriber) -> None:
        queues = self.subscribers.get((symbol, interval))
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.subscribers[(symbol, interval)]
                self.closed_through.pop((symbol, interval), None)

    def on_applied(self, touched: set[str], closed: list[Candle]) -> None:
        """A batch is applied, not stored yet: push the forming candles of the subscriptions
        it touched, but of those where it closed a candle (pushed once in Cassandra, in order)."""
        self.pushed_early.clear()
        if not self.subscribers:
            return
        proc = self.processor()
        if proc is None:
            return
        closing = {(c.symbol, c.interval) for c in closed}
        for key, queues in list(self.subscribers.items()):
            symbol, interval = key
            if symbol not in touched or key in closing:
                continue
            forming = self._forming(proc, key)
            messages = _candle_messages(symbol, interval, forming, int(time.time() * 1000))
            self.pushed_early[key] = set(queues)
            if messages:
                for subscriber in queues:
                    subscriber.offer(messages)

    def on_change(
        self, touched: set[str], closed: list[Candle], signals: list[Signal] | None = None
    ) -> None:
        early, self.pushed_early = self.pushed_early, {}
        if not self.subscribers:
            return
        proc = self.processor()
        for key, queues in list(self.subscribers.items()):
            symbol, interval = key
            if symbol not in touched:
                continue
            closing = [
                from_candle(c, c.indicators)
                for c in closed
                if c.symbol == symbol and c.interval == interval
            ]
            now = int(time.time() * 1000)
            signal_messages = [
                {
                    "type": "signal",
                    "symbol": symbol,
                    "interval": interval,
                    "signal": signal.to_json(),
                    "sent_at": now,
                }
                for signal in signals or ()
                if signal.symbol == symbol and signal.interval == interval
            ]
            # Those who had the forming candles when the batch was applied get only what
            # storing it adds (nothing closed in it: see on_applied); an entry left by a batch
            # that then failed to store holds back nothing but a repeat of an unchanged
            # forming candle. The others get the closed candles, then the forming ones.
            pushed = queues & early.get(key, set()) if not closing else set()
            if signal_messages:
                for subscriber in pushed:
                    subscriber.offer(signal_messages)
            rest = queues - pushed
            if not rest:
                continue
            if closing:
                through = max(c["t"] for c in closing)
                self.closed_through[key] = max(through, self.closed_through.get(key, through))
            forming = self._forming(proc, key) if proc is not None else []
            full = _candle_messages(symbol, interval, closing + forming, now) + signal_messages
            if full:
                for subscriber in rest:
                    subscriber.offer(full)

    def _forming(self, proc: ProcessorView, key: tuple[str, str]) -> list[dict[str, Any]]:
        """The subscription's forming candles, but any pushed closed already."""
        symbol, interval = key
        forming = [from_candle(c, v) for c, v in proc.forming(symbol, interval)]
        through = self.closed_through.get(key)
        if through is None:
            return forming
        return [c for c in forming if c["t"] > through]


def _candle_messages(
    symbol: str, interval: str, candles: list[dict[str, Any]], now: int
) -> list[dict[str, Any]]:
    return [
        {"type": "candle", "symbol": symbol, "interval": interval, "candle": c, "sent_at": now}
        for c in candles
    ]


hub = Hub(lambda: app.view)
app.change_listeners.append(hub.on_change)
app.applied_listeners.append(hub.on_applied)


def live_client(request: Request) -> str | None:
    """Whom a live connection counts against: its address, unless a worker signed it."""
    return None if trusted_routed(request) else (aiohttp_request(request).remote or "?")


def cannot_open(view: ApiView, request: Request) -> Any:
    """A JSON refusal for a live request that cannot become a socket here; None if it can."""
    if not origin_allowed(request):
        return view.json({"error": "origin not allowed"}, status=403)
    if not web.WebSocketResponse().can_prepare(aiohttp_request(request)).ok:
        return view.json({"error": "a WebSocket: open it with an Upgrade request"}, status=400)
    return None


async def open_socket(
    view: ApiView,
    request: Request,
    serve: Callable[[web.WebSocketResponse], Awaitable[None]],
) -> Any:
    """A live WebSocket, both views': refused with JSON if it cannot open here or a limit is
    reached, its place taken before the handshake and given back however it ends; ``serve``
    runs it."""
    refused = cannot_open(view, request)
    if refused is not None:
        return refused
    client = live_client(request)
    full = hub.reserve(client)
    if full is not None:
        return view.json({"error": full[1]}, status=full[0])
    try:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(aiohttp_request(request))
        try:
            await serve(ws)
        finally:
            await ws.close()
    finally:
        hub.release(client)
    return ws


@app.page("/api/live/{symbol}")
class Live(ApiView):
    async def get(self, request: Request, symbol: str) -> Any:
        try:
            name = parse_symbol(symbol)
            interval = parse_interval(request.query.get("interval"), get_settings().intervals)
        except BadRequest as exc:
            return self.json({"error": str(exc)}, status=400)
        return await open_socket(self, request, lambda ws: self._open(ws, request, name, interval))

    async def _open(
        self, ws: web.WebSocketResponse, request: Request, symbol: str, interval: str
    ) -> None:
        transport = aiohttp_request(request).transport
        sock = transport.get_extra_info("socket") if transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        # Another worker found this one to be the owner: never relayed back.
        owner = None if routed_here(request) else owner_url(symbol)
        if owner is not None:
            await self._relay(ws, owner, request, symbol, interval)
        else:
            await self._serve(ws, request, symbol, interval)

    async def _serve(
        self, ws: web.WebSocketResponse, request: Request, symbol: str, interval: str
    ) -> None:
        timeout = get_settings().live_send_timeout_seconds
        subscriber = hub.subscribe(symbol, interval)
        reader = asyncio.ensure_future(ws.receive())  # ends when the client goes away
        try:
            while not ws.closed:
                getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    getter.cancel()
                    break
                if subscriber.overflowed or not await _send(ws, getter.result(), timeout):
                    _drop(request, symbol, interval)
                    break
        finally:
            hub.unsubscribe(symbol, interval, subscriber)
            reader.cancel()

    async def _relay(
        self, ws: web.WebSocketResponse, owner: Any, request: Request, symbol: str, interval: str
    ) -> None:
        path = aiohttp_request(request).path
        url = owner.with_scheme("ws").with_path(path).with_query(request.query)
        timeout = get_settings().live_send_timeout_seconds
        try:
            headers = internal_headers("GET", url)
            async with app.http_client.ws_connect(url, headers=headers) as upstream:
                reader = asyncio.ensure_future(ws.receive())
                async for message in upstream:
                    if reader.done():
                        break
                    if message.type == aiohttp.WSMsgType.TEXT and not await _send(
                        ws, [message.data], timeout
                    ):
                        _drop(request, symbol, interval)
                        break
                reader.cancel()
        except aiohttp.ClientError as exc:
            log.warning("relay to %s failed: %s", owner, type(exc).__name__)


def _drop(request: Request, symbol: str, interval: str) -> None:
    """Disconnect a client that does not keep up. Its buffers are full, so a close frame
    could wait as long as the messages did: the connection is cut instead."""
    hub.dropped += 1
    log.info("dropped a live client of %s %s: too slow", symbol, interval)
    transport = aiohttp_request(request).transport
    if transport is not None:
        transport.abort()


async def _send(ws: web.WebSocketResponse, messages: list[Any], timeout: float) -> bool:
    """Send one change's messages (dicts, or text already encoded); False if the client did
    not take them within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            for message in messages:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_json(message)
    except TimeoutError:
        return False
    return True
