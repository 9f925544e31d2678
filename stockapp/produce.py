"""``stockapp produce``: run a source and publish its quotes until it ends, --count is reached,
or SIGINT/SIGTERM; then flush and print a summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable

from stockapp.settings import Settings
from stockapp.sources.producer import QuoteProducer, SendSummary
from stockapp.topics import ensure_topics

# (index, quote) -> seconds after the start at which to send it; None: as fast as possible
Pacer = Callable[[int, dict], float] | None
Quotes = Iterable[dict] | AsyncIterator[dict]


def at_rate(rate: float) -> Pacer:
    """``rate`` quotes per second."""
    return lambda n, quote: n / rate


def keeping_gaps(speed: float) -> Pacer:
    """The gaps between the quotes' own times (``_ms``), divided by ``speed``."""
    first: list[int] = []

    def due(n: int, quote: dict) -> float:
        if not first:
            first.append(quote["_ms"])
        return (quote["_ms"] - first[0]) / 1000 / speed

    return due


async def _each(quotes: Quotes, stop: asyncio.Event) -> AsyncIterator[dict]:
    """The source's quotes until it ends or ``stop`` is set. An async source (a poller) is
    raced against ``stop``: it may wait minutes for its next quote, and a signal must not."""
    if not hasattr(quotes, "__aiter__"):
        for quote in quotes:
            yield quote
        return
    iterator = quotes.__aiter__()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            following = asyncio.ensure_future(iterator.__anext__())
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                return
            try:
                yield following.result()
            except StopAsyncIteration:
                return
    finally:
        stopped.cancel()


async def publish(
    settings: Settings, quotes: Quotes, pacer: Pacer, count: int | None, chunk: int = 5000
) -> SendSummary:
    """Send ``quotes`` as their pacer says; quotes already due go to Kafka together."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if count == 0:
        return SendSummary()
    began = time.monotonic()
    due: list[dict] = []
    sent = 0
    async with QuoteProducer(settings) as producer:
        async for quote in _each(quotes, stop):
            if stop.is_set():
                break
            if pacer is not None:
                delay = began + pacer(sent + len(due), quote) - time.monotonic()
                if delay > 0.002:
                    if due:  # what is due goes out before we wait
                        await producer.send_many(due)
                        sent += len(due)
                        due = []
                    # Wait on the stop event, so a signal ends a slow source at once.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    if stop.is_set():
                        break
            quote.pop("_ms", None)
            due.append(quote)
            if count is not None and sent + len(due) >= count:
                break  # now, not at the next quote: a poller may not send one for a while
            if len(due) >= chunk or (pacer is None and not isinstance(quotes, Iterable)):
                await producer.send_many(due)
                sent += len(due)
                due = []
        if due:
            await producer.send_many(due)
    return producer.summary


def run(settings: Settings, quotes: Quotes, pacer: Pacer, count: int | None) -> int:
    ensure_topics(settings)
    summary = asyncio.run(publish(settings, quotes, pacer, count))
    print(f"produce: {summary.line()}", file=sys.stderr)
    return 0 if summary.failed == 0 else 1
