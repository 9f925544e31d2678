"""Signals for the front end: ``GET /api/signals`` (history from Cassandra) and the WebSocket
``/api/signals/live``, every signal of every symbol as it fires (docs/web.md).

Signals fire on the worker that owns the symbol; any worker serves them all live by tailing
the signals topic itself, with a consumer of its own (no group: it reads every partition from
the end, started with the first client and kept).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import web
from faust.web import Request, Response

from stockapp.app import app
from stockapp.credentials import kafka_options
from stockapp.settings import get_settings
from stockapp.web.api import reader
from stockapp.web.http import ApiView, aiohttp_request
from stockapp.web.live import Subscriber, _send, hub, open_socket
from stockapp.web.params import parse_signal_query
from stockapp.web.signal_schema import checked_signal

log = logging.getLogger(__name__)


@app.page("/api/signals")
class Signals(ApiView):
    async def get(self, request: Request) -> Response:
        async def handler() -> Any:
            q = parse_signal_query(dict(request.query), get_settings().intervals)
            return {"signals": await reader.signals(q, int(time.time() * 1000))}

        return await self.respond(request, handler)


class SignalTail:
    """The signals topic, from its end, fanned out to the live clients of this worker."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task | None = None
        self.received = 0
        self.malformed = 0  # records of the topic that were not signals: dropped

    def subscribe(self) -> Subscriber:
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        return subscriber

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        settings = get_settings()
        while True:
            consumer = AIOKafkaConsumer(
                settings.topic_signals,
                bootstrap_servers=list(settings.kafka_bootstrap),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                **kafka_options(settings),
            )
            try:
                await consumer.start()
                async for record in consumer:
                    self._offer(record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker away: try again shortly
                log.warning("tailing the signals topic failed: %s", type(exc).__name__)
            finally:
                await consumer.stop()
            await asyncio.sleep(2.0)

    def _offer(self, value: bytes | None) -> None:
        try:
            signal = checked_signal(orjson.loads(value or b""))
        except orjson.JSONDecodeError:
            signal = None
        if signal is None:
            # Not a signal: whoever wrote it, the pages must not get it (stockapp/web/
            # signal_schema.py). Counted in /stats and /metrics, not logged per record.
            self.malformed += 1
            return
        self.received += 1
        message = {"type": "signal", "signal": signal, "sent_at": int(time.time() * 1000)}
        for subscriber in list(self.subscribers):
            subscriber.offer([message])

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


tail = SignalTail()


# A receiver as mode's signals type it: the sender positional-only, then any arguments.
@app.on_before_shutdown.connect
async def _stop_tail(app: Any, /, *args: Any, **kwargs: Any) -> None:
    await tail.close()


@app.page("/api/signals/live")
class LiveSignals(ApiView):
    async def get(self, request: Request) -> Any:
        # Counted like the chart's sockets, in all and per client address, before the
        # handshake (stockapp/web/live.py).
        return await open_socket(self, request, lambda ws: self._serve(ws, request))

    async def _serve(self, ws: web.WebSocketResponse, request: Request) -> None:
        timeout = get_settings().live_send_timeout_seconds
        subscriber = tail.subscribe()
        reader_task = asyncio.ensure_future(ws.receive())  # ends when the client goes away
        try:
            while not ws.closed:
                getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait(
                    {getter, reader_task}, return_when=asyncio.FIRST_COMPLETED
                )
                if reader_task in done:
                    getter.cancel()
                    break
                sent = await _send(ws, getter.result(), timeout)
                if subscriber.overflowed or not sent:
                    hub.dropped += 1
                    transport = aiohttp_request(request).transport
                    if transport is not None:
                        transport.abort()
                    break
        finally:
            tail.subscribers.discard(subscriber)
            reader_task.cancel()
