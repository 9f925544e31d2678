"""``stockapp produce``: run a source and publish its quotes until it ends, --count is reached,
or SIGINT/SIGTERM; then flush and print a summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable

from stockapp.errors import StockappError
from stockapp.models import Quote
from stockapp.settings import Settings
from stockapp.sources.factory import Pacer, Quotes, SourceSpec, open_source
from stockapp.sources.producer import QuoteProducer, SendSummary
from stockapp.timeouts import within
from stockapp.topics import ensure_topics

DEFAULT_PACK = 100  # quotes per record when packing
PACK_FROM_RATE = 1000.0  # quotes/s from which the simulator packs by default
DEFAULT_LINGER_S = 0.005


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
    settings: Settings,
    quotes: Quotes,
    pacer: Pacer,
    count: int | None,
    chunk: int = 5000,
    pack: int = 1,
    linger: float = 0.0,
) -> SendSummary:
    """Send ``quotes`` as their pacer says; quotes already due go to Kafka together. Packing
    (``pack`` > 1), due quotes are held up to ``linger`` seconds for more to join them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if count == 0:
        return SendSummary()
    hold = linger if pack > 1 else 0.0
    began = time.monotonic()
    async with QuoteProducer(settings, pack=pack) as producer:
        try:
            await _pump(producer, quotes, pacer, count, chunk, hold, stop, began)
        except StockappError as exc:  # the source gave up (a refused key): flush what came
            producer.summary.stopped_by = str(exc)
    return producer.summary


async def _pump(
    producer: QuoteProducer,
    quotes: Quotes,
    pacer: Pacer,
    count: int | None,
    chunk: int,
    hold: float,
    stop: asyncio.Event,
    began: float,
) -> None:
    due: list[Quote] = []
    due_since = 0.0
    sent = 0
    try:
        async for quote in _each(quotes, stop):
            if stop.is_set():
                break
            while pacer is not None:
                now = time.monotonic()
                delay = began + pacer(sent + len(due), quote) - now
                if delay <= 0.002:
                    break
                if due and now - due_since >= hold:  # what is due goes out before we wait
                    await producer.send_many(due)
                    sent += len(due)
                    due = []
                    continue
                # Wait on the stop event, so a signal ends a slow source at once.
                wait = min(delay, due_since + hold - now) if due else delay
                with contextlib.suppress(TimeoutError):
                    await within(wait, stop.wait())
                if stop.is_set():
                    break
            if stop.is_set():
                break
            if not due:
                due_since = time.monotonic()
            due.append(quote)
            if count is not None and sent + len(due) >= count:
                break  # now, not at the next quote: a poller may not send one for a while
            if len(due) >= chunk or (pacer is None and not isinstance(quotes, Iterable)):
                await producer.send_many(due)
                sent += len(due)
                due = []
    except StockappError:
        if due:  # what the source gave before it stopped is published
            await producer.send_many(due)
        raise
    if due:
        await producer.send_many(due)


def auto_pack(spec: SourceSpec) -> int:
    """Quotes per record when ``--pack`` is not given: packed at high rates (a record per
    quote costs the worker more than the quote), one by one otherwise."""
    fast = spec.kind == "simulator" and (spec.rate == 0 or spec.rate >= PACK_FROM_RATE)
    return DEFAULT_PACK if fast else 1


def run(
    settings: Settings,
    spec: SourceSpec,
    count: int | None,
    pack: int | None = None,
    linger: float = DEFAULT_LINGER_S,
) -> int:
    """Publish the source's live quotes; prints the summary line, exit code 1 if any failed.
    ``pack``: quotes per record at most (None: :func:`auto_pack`)."""
    ensure_topics(settings)
    pack = auto_pack(spec) if pack is None else pack

    async def main() -> tuple[SendSummary, str]:
        async with open_source(spec, settings) as source:
            summary = await publish(
                settings, source.quotes, source.pacer, count, pack=pack, linger=linger
            )
            return summary, source.report()

    summary, report = asyncio.run(main())
    print(f"produce: {'; '.join(filter(None, (summary.line(), report)))}", file=sys.stderr)
    if summary.stopped_by:
        print(f"stockapp: error: {summary.stopped_by}", file=sys.stderr)
        return 1
    return 0 if summary.failed == 0 else 1
