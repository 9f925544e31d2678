"""``stockapp produce``: run a source and publish its quotes until it ends, --count is reached,
or SIGINT/SIGTERM; then flush and print a summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator

from stockapp.settings import Settings
from stockapp.sources.producer import QuoteProducer, SendSummary
from stockapp.topics import ensure_topics


async def publish(
    settings: Settings, quotes: Iterator[dict], rate: float | None, count: int | None
) -> SendSummary:
    """Send ``quotes`` at ``rate`` per second (None: as fast as possible)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    began = time.monotonic()
    async with QuoteProducer(settings) as producer:
        for n, quote in enumerate(quotes):
            if stop.is_set() or (count is not None and n >= count):
                break
            if rate is not None:
                due = began + n / rate
                delay = due - time.monotonic()
                if delay > 0.002:
                    # Wait on the stop event, so a signal ends a slow source at once.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
            await producer.send(quote)
    return producer.summary


def run(settings: Settings, quotes: Iterator[dict], rate: float | None, count: int | None) -> int:
    ensure_topics(settings)
    summary = asyncio.run(publish(settings, quotes, rate, count))
    print(f"produce: {summary.line()}", file=sys.stderr)
    return 0 if summary.failed == 0 else 1
