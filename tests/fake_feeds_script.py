"""Scripted server behaviour shared by the fake streaming feeds (fake_finnhub, fake_alpaca).

A script is a list of steps that one WebSocket connection plays from the server's side while
the fake keeps answering the client's protocol messages (subscribe, auth, ...) on its own.
Each new connection takes the next script from the fake's `scripts`; once they are used up a
connection plays the idle script: it stays open with keep-alives until the client leaves.
A script that ends without Close or Drop continues the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from aiohttp import WSMsgType, web


@dataclass(frozen=True)
class Send:
    """One text frame: a dict or list is JSON-encoded, a str goes verbatim (e.g. malformed)."""

    payload: dict[str, Any] | list[Any] | str


@dataclass(frozen=True)
class AwaitSubscribed:
    """Wait until the connection holds at least `count` symbols, so data never precedes its
    subscription. `channel` picks Alpaca's channel ("trades" or "bars"); Finnhub has only one.
    On timeout the fake records a script error and closes with 1011, so a test fails fast."""

    count: int
    timeout: float = 10
    channel: str = "trades"


@dataclass(frozen=True)
class Drop:
    """End the TCP connection with no WebSocket close frame, as a network failure would."""


@dataclass(frozen=True)
class Silence:
    """Send nothing for `seconds` - no keep-alives, not even pongs to the client's pings - to
    model a half-open connection the client can only notice by its idle timeout."""

    seconds: float


@dataclass(frozen=True)
class Sleep:
    """Pause the script while still sending the protocol's keep-alives."""

    seconds: float


@dataclass(frozen=True)
class Close:
    """A normal WebSocket close with this code."""

    code: int = 1000


Step = Send | AwaitSubscribed | Drop | Silence | Sleep | Close
Script = list[Step]


@dataclass
class ConnectionRecord:
    """What one connection did; the fakes extend it with their protocol's state."""

    received: list[Any] = field(default_factory=list)  # parsed client messages (raw if not JSON)
    sent: list[str] = field(default_factory=list)  # every text frame the fake sent
    dropped: bool = False  # the fake cut it with Drop
    closed: bool = False  # over, whoever ended it
    script_error: str | None = None
    # Not compared or shown: they are plumbing, not a record.
    silent: bool = field(default=False, repr=False, compare=False)
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    def symbol_count(self, channel: str) -> int:
        raise NotImplementedError


async def send_text(ws: web.WebSocketResponse, conn: ConnectionRecord, text: str) -> bool:
    """Send unless the connection is gone (the client may leave at any moment) or silent (a
    half-open connection answers nothing, not even the protocol's replies)."""
    if ws.closed or conn.silent:
        return False
    try:
        await ws.send_str(text)
    except ConnectionResetError:
        return False
    conn.sent.append(text)
    return True


async def send_json(ws: web.WebSocketResponse, conn: ConnectionRecord, payload: Any) -> bool:
    # Compact separators, as both services send.
    return await send_text(ws, conn, json.dumps(payload, separators=(",", ":")))


async def answer_ping(ws: web.WebSocketResponse, conn: ConnectionRecord, data: bytes) -> None:
    # The fakes disable aiohttp's autoping so that Silence can withhold pongs too.
    if not conn.silent and not ws.closed:
        try:
            await ws.pong(data)
        except ConnectionResetError:
            pass


def is_end(msg_type: WSMsgType) -> bool:
    return msg_type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class Session:
    """One live connection: its socket, its record and the tasks it runs besides the reader."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, conn: ConnectionRecord
    ) -> None:
        self.ws = ws
        self.request = request
        self.conn = conn
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing: asyncio.Task[bool] | None = None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def send(self, payload: Any) -> bool:
        if isinstance(payload, str):
            return await send_text(self.ws, self.conn, payload)
        return await send_json(self.ws, self.conn, payload)

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        # The close handshake runs in its own task: the reader's cleanup cancels the task
        # that asked for the close (a script, a watchdog), which must not cut the handshake.
        if self.closing is None:
            self.closing = asyncio.ensure_future(self.ws.close(code=code, message=message))
        await asyncio.shield(self.closing)

    def drop(self) -> None:
        self.conn.dropped = True
        # close(), not abort(): frames already written still reach the client, then it sees
        # EOF with no close frame - a cut connection, not a closed session.
        transport = self.request.transport
        if transport is not None:
            transport.close()


class ScriptPlayer:
    """Plays one script on one connection, then keeps the connection alive."""

    def __init__(
        self,
        steps: Sequence[Step],
        session: Session,
        keepalive: Callable[[], Awaitable[None]] | None,
        ping_every: float,
    ) -> None:
        self.steps = steps
        self.session = session
        self.ws = session.ws
        self.conn = session.conn
        self.keepalive = keepalive
        self.ping_every = ping_every

    async def run(self) -> None:
        for step in self.steps:
            if self.ws.closed or not await self._play(step):
                return
        await self._idle()

    async def _play(self, step: Step) -> bool:
        """False when the step ended the connection."""
        match step:
            case Send(payload=payload):
                await self.session.send(payload)
            case AwaitSubscribed(count=count, timeout=timeout, channel=channel):
                if not await self._await_subscribed(count, timeout, channel):
                    self.conn.script_error = (
                        f"AwaitSubscribed({count}, channel={channel!r}) timed out after "
                        f"{timeout}s with {self.conn.symbol_count(channel)} subscribed"
                    )
                    await self.session.close(1011, b"fake script timed out")
                    return False
            case Drop():
                self.session.drop()
                return False
            case Silence(seconds=seconds):
                self.conn.silent = True
                try:
                    await asyncio.sleep(seconds)
                finally:
                    self.conn.silent = False
            case Sleep(seconds=seconds):
                await self._sleep(seconds)
            case Close(code=code):
                await self.session.close(code)
                return False
        return True

    async def _await_subscribed(self, count: int, timeout: float, channel: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.conn.symbol_count(channel) < count:
            self.conn.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0 or self.ws.closed:
                return False
            try:
                await asyncio.wait_for(self.conn.changed.wait(), remaining)
            except TimeoutError:
                return self.conn.symbol_count(channel) >= count
        return True

    async def _sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            if self.keepalive is None or self.ping_every <= 0 or remaining < self.ping_every:
                await asyncio.sleep(remaining)
                return
            await asyncio.sleep(self.ping_every)
            if self.ws.closed:
                return
            await self.keepalive()

    async def _idle(self) -> None:
        while not self.ws.closed:
            await self._sleep(3600)


C = TypeVar("C", bound=ConnectionRecord)

# How long a close waits for the client's close frame. aiohttp's 10 s would stall a test whose
# client is not reading; a local client answers in milliseconds.
CLOSE_TIMEOUT = 2.0


class FeedServer(Generic[C]):
    """The plumbing both fakes share: the aiohttp site, script hand-out, the reader loop."""

    def __init__(self, scripts: Sequence[Script] | None, ping_every: float) -> None:
        # Tests may append scripts while the fake runs; hand them out by position.
        self.scripts: list[Script] = list(scripts or [])
        self.scripts_used = 0
        self.ping_every = ping_every
        self.connections: list[C] = []
        self.sessions: list[Session] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._connected = asyncio.Condition()

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.add_routes(app)
        # A short shutdown: any handler still running at exit is a test's leftover.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        live = [s for s in self.sessions if not s.ws.closed]
        for session in live:
            session.spawn(session.close(1001))  # going away
        waiters = [asyncio.ensure_future(s.conn.ended.wait()) for s in live]
        if waiters:
            _, pending = await asyncio.wait(waiters, timeout=CLOSE_TIMEOUT)
            for waiter in pending:
                waiter.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def script_errors(self) -> list[str]:
        return [c.script_error for c in self.connections if c.script_error]

    def next_script(self) -> Script:
        if self.scripts_used < len(self.scripts):
            self.scripts_used += 1
            return self.scripts[self.scripts_used - 1]
        return []  # the idle script

    async def wait_connections(self, count: int, timeout: float = 5.0) -> C:
        """Wait until `count` connections have been accepted; return the count-th."""
        async with self._connected:
            await asyncio.wait_for(
                self._connected.wait_for(lambda: len(self.connections) >= count), timeout
            )
        return self.connections[count - 1]

    async def open_session(self, request: web.Request, conn: C) -> Session:
        # autoping off so that Silence can withhold pongs; the reader answers pings itself.
        ws = web.WebSocketResponse(autoping=False, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        session = Session(ws, request, conn)
        self.sessions.append(session)
        self.connections.append(conn)
        async with self._connected:
            self._connected.notify_all()
        return session

    def play(
        self, session: Session, keepalive: Callable[[], Awaitable[None]] | None
    ) -> asyncio.Task[None]:
        player = ScriptPlayer(self.next_script(), session, keepalive, self.ping_every)
        return session.spawn(player.run())

    async def converse(
        self,
        session: Session,
        on_text: Callable[[str], Awaitable[None]],
        on_binary: Callable[[bytes], Awaitable[None]] | None = None,
    ) -> None:
        """Read client frames until the connection ends, then stop everything it started."""
        ws, conn = session.ws, session.conn
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.PING:
                    await answer_ping(ws, conn, msg.data)
                elif msg.type is WSMsgType.TEXT:
                    await on_text(msg.data)
                elif msg.type is WSMsgType.BINARY and on_binary is not None:
                    await on_binary(msg.data)
                elif is_end(msg.type):
                    break
        finally:
            conn.closed = True
            for task in list(session.tasks):
                task.cancel()
            await asyncio.gather(*session.tasks, return_exceptions=True)
            if session.closing is not None:
                await asyncio.wait([session.closing], timeout=CLOSE_TIMEOUT + 1)
            conn.ended.set()
            conn.changed.set()  # wakes an AwaitSubscribed so it sees the end
