"""``stockapp produce``: run a source and publish its quotes until it ends, --count is reached,
or SIGINT/SIGTERM; then flush and print a summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable

from stockapp.models import Quote
from stockapp.settings import Settings
from stockapp.sources.factory import Pacer, Quotes, SourceSpec, open_source
from stockapp.sources.producer import QuoteProducer, SendSummary
from stockapp.topics import ensure_topics


async def _each(quotes: Quotes, stop: asyncio.Event) -> AsyncIterator[Quote]:
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
    due: list[Quote] = []
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


def run(settings: Settings, spec: SourceSpec, count: int | None) -> int:
    """Publish the source's live quotes; prints the summary line, exit code 1 if any failed."""
    ensure_topics(settings)

    async def main() -> tuple[SendSummary, str]:
        async with open_source(spec, settings) as source:
            summary = await publish(settings, source.quotes, source.pacer, count)
            return summary, source.report()

    summary, report = asyncio.run(main())
    print(f"produce: {'; '.join(filter(None, (summary.line(), report)))}", file=sys.stderr)
    return 0 if summary.failed == 0 else 1
