"""A live market-data feed over a WebSocket, whatever the service: connect, let the service's
dialogue (:class:`Dialogue`) hand-shake and subscribe, then read its frames as quotes; on a
dropped, silent or failed connection, wait (exponential backoff with full jitter) and do it all
again. What a retry cannot fix (a refused key, a plan's limits) stops the source with
:class:`FeedRefused`, whose text names the cause.

Back-pressure: a frame is read only when the quotes of the one before were taken, so a source
faster than Kafka waits in the socket (aiohttp stops reading it once its small queue is full),
never in a buffer of ours. Trades are not replayed by the services after a reconnect; when one
is sent again all the same, its id makes it a repeat: dropped here, and by the worker if it
got that far (docs/sources.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stockapp.errors import StockappError
from stockapp.models import Quote
from stockapp.timeouts import within

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

HANDSHAKE_SECONDS = 10.0  # Alpaca closes a connection not authenticated within 10 s
FIRST_BACKOFF_SECONDS = 1.0
# A connection that lasted this long was a good one: the backoff starts again from 1 s. One
# that the service accepts and then drops at once (a second client on a one-connection key,
# a slow-client error) keeps the waits growing.
STABLE_SECONDS = 30.0
REMEMBERED_IDS = 200_000  # trade ids kept to tell a repeat (a few minutes of a busy feed)


class FeedRefused(StockappError):
    """The service refused what retrying cannot change (key, plan, symbols): the source stops.
    The text is safe to show: it never holds a key."""


class Dropped(Exception):
    """The connection is to be made again: ``str()`` says why, in a few words."""


@dataclass
class FeedStats:
    trades: int = 0  # trades read
    published: int = 0
    volume_only: int = 0  # published as volume-only (their conditions)
    not_counted: int = 0  # conditions that count for nothing: not published
    unknown_conditions: int = 0  # trades with a condition code not in the tables
    repeats: int = 0  # ids seen before: not published again
    malformed: int = 0  # frames or trades that could not be read
    not_applied: int = 0  # corrections and cancels (not applied to candles)
    reconnects: int = 0
    service_errors: Counter[str] = field(default_factory=Counter)

    def line(self, name: str) -> str:
        errors = ", ".join(f"{text} x{n}" for text, n in self.service_errors.items())
        return (
            f"{name}: {self.trades} trades read, {self.published} published "
            f"({self.volume_only} volume-only), {self.not_counted} not counted by their "
            f"conditions, {self.repeats} repeats, {self.malformed} malformed, "
            f"{self.unknown_conditions} with unknown conditions, {self.not_applied} corrections "
            f"or cancels not applied, {self.reconnects} reconnects"
            + (f"; service errors: {errors}" if errors else "")
        )


class Dialogue(Protocol):
    """What one service says over a connection."""

    name: str
    idle_seconds: float | None  # None: only the WebSocket heartbeat tells a dead connection

    def url(self) -> str: ...

    def refusal(self, status: int) -> str | None:
        """What an HTTP ``status`` refusing the upgrade means, if retrying cannot help."""
        ...

    async def open(self, ws: aiohttp.ClientWebSocketResponse) -> list[Quote]:
        """Hand-shake and subscribe; quotes of data frames that came meanwhile."""
        ...

    def frame(self, text: str) -> list[Quote]:
        """The quotes of one text frame. Raises :class:`Dropped` or :class:`FeedRefused` for
        the service's errors."""
        ...


class RecentIds:
    """The last ``size`` ids seen, to tell a repeat in constant memory."""

    def __init__(self, size: int = REMEMBERED_IDS) -> None:
        self.size = size
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def seen(self, quote_id: str) -> bool:
        """True if ``quote_id`` was seen; remembers it otherwise."""
        if quote_id in self._ids:
            return True
        self._ids.add(quote_id)
        self._order.append(quote_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())
        return False


async def receive_text(ws: aiohttp.ClientWebSocketResponse, timeout: float | None) -> str:
    """The next text frame; :class:`Dropped` if the connection ends or stays silent."""
    import aiohttp

    try:
        message = await ws.receive(timeout=timeout)
    except TimeoutError:
        raise Dropped(f"nothing received for {timeout:g} s") from None
    if message.type == aiohttp.WSMsgType.TEXT:
        return str(message.data)
    if message.type == aiohttp.WSMsgType.BINARY:
        return bytes(message.data).decode("utf-8", "replace")
    if message.type == aiohttp.WSMsgType.ERROR:
        raise Dropped(f"connection failed ({type(message.data).__name__})")
    failed = ws.exception()  # e.g. the heartbeat's pong did not come: aiohttp closed it
    if failed is not None:
        raise Dropped(f"connection lost ({type(failed).__name__})")
    raise Dropped(f"closed by the service (code {ws.close_code})")


class LiveFeed:
    """``quotes()`` yields a dialogue's quotes for as long as it is iterated."""

    def __init__(
        self,
        dialogue: Dialogue,
        stats: FeedStats,
        heartbeat: float,
        backoff_max: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.dialogue = dialogue
        self.stats = stats
        self.heartbeat = heartbeat
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.jitter = jitter
        self.recent = RecentIds()

    def _new(self, quotes: list[Quote]) -> list[Quote]:
        out = []
        for quote in quotes:
            if quote.id is not None and not quote.is_bar and self.recent.seen(quote.id):
                self.stats.repeats += 1
                continue
            out.append(quote)
            self.stats.volume_only += quote.volume_only
        self.stats.published += len(out)
        return out

    async def quotes(self) -> AsyncIterator[Quote]:
        import aiohttp

        name = self.dialogue.name
        failures = 0
        async with aiohttp.ClientSession() as session:
            while True:
                opened_at: float | None = None
                try:
                    async with session.ws_connect(
                        self.dialogue.url(),
                        heartbeat=self.heartbeat,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                        max_msg_size=16 * 1024 * 1024,
                    ) as ws:
                        opened = await within(HANDSHAKE_SECONDS, self.dialogue.open(ws))
                        opened_at = time.monotonic()
                        if failures:
                            log.warning("%s: connected again", name)
                        for quote in self._new(opened):
                            yield quote
                        while True:
                            text = await receive_text(ws, self.dialogue.idle_seconds)
                            for quote in self._new(self.dialogue.frame(text)):
                                yield quote
                except aiohttp.InvalidURL:
                    raise FeedRefused(f"{name}: the service's URL is not a URL") from None
                except aiohttp.WSServerHandshakeError as exc:
                    refused = self.dialogue.refusal(exc.status)
                    if refused:
                        raise FeedRefused(refused) from None
                    reason = f"the upgrade was answered with HTTP {exc.status}"
                except TimeoutError:
                    reason = f"no handshake within {HANDSHAKE_SECONDS:g} s"
                except Dropped as exc:
                    reason = str(exc)
                except (aiohttp.ClientError, OSError) as exc:
                    reason = f"cannot connect ({type(exc).__name__})"
                if opened_at is not None and time.monotonic() - opened_at >= STABLE_SECONDS:
                    failures = 0
                failures += 1
                self.stats.reconnects += 1
                # Full jitter: many clients cut off together do not come back together.
                ceiling = min(
                    self.backoff_max, FIRST_BACKOFF_SECONDS * 2.0 ** min(failures - 1, 32)
                )
                delay = ceiling * self.jitter()
                log.warning("%s: %s; reconnecting in %.1f s", name, reason, delay)
                await self.sleep(delay)


def log_once(seen: set[str], kind: str, message: str, *args: Any) -> None:
    """Log a warning the first time ``kind`` happens (the summary counts the rest)."""
    if kind not in seen:
        seen.add(kind)
        log.warning(message + " (further ones are counted, not logged)", *args)
