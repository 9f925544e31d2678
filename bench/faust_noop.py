"""Faust's ceiling: an agent that takes the benchmark stream in batches and does nothing else.

Run by bench/throughput.py as ``python -m bench.faust_noop`` with BENCH_* variables; writes
``{"first": t, "last": t, "records": n}`` (monotonic clock of this process) to BENCH_OUT once
it has seen BENCH_COUNT records. BENCH_FAUST_CONSUMER=stockapp runs it on the worker's Faust
app class and consumer (stockapp/faust_compat.py: the fetch loop without per-record tasks,
queueing the records of a topic typed as bytes, as the quotes topic is, without decoding);
BENCH_FAUST_DELIVERY=queue takes the batches as the worker's agent does
(stockapp/delivery.py) instead of with ``take_events``, acking each event as it does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import faust

from stockapp.delivery import fetched_batches
from stockapp.faust_compat import SafeSeekApp

TOPIC = os.environ.get("BENCH_TOPIC", "bench.quotes")
COUNT = int(os.environ.get("BENCH_COUNT", "0"))
OUT = os.environ.get("BENCH_OUT", "faust-noop.json")

STOCKAPP_CONSUMER = os.environ.get("BENCH_FAUST_CONSUMER") == "stockapp"
App = SafeSeekApp if STOCKAPP_CONSUMER else faust.App
app = App(
    os.environ.get("BENCH_APP_ID", "bench-faust-noop"),
    broker=f"kafka://{os.environ.get('BENCH_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    web_host="127.0.0.1",
    web_port=int(os.environ.get("BENCH_WEB_PORT", "6199")),
    consumer_auto_offset_reset="earliest",
    topic_disable_leader=True,
)
# On the worker's consumer, typed as the worker's quotes topic (bytes, raw codecs), whose
# records its fetch loop queues as fetched; Faust's own stays as it was measured before.
types: dict[str, Any] = {"key_type": bytes, "value_type": bytes} if STOCKAPP_CONSUMER else {}
topic = app.topic(TOPIC, key_serializer="raw", value_serializer="raw", **types)


QUEUE_DELIVERY = os.environ.get("BENCH_FAUST_DELIVERY") == "queue"


@app.agent(topic)
async def noop(stream: Any) -> None:
    seen = 0
    first = None
    batches = (
        fetched_batches(stream, 5000, 0.1)
        if QUEUE_DELIVERY
        else stream.take_events(5000, within=0.1)
    )
    async for events in batches:
        if first is None:
            first = time.monotonic()
        seen += len(events)
        if QUEUE_DELIVERY:  # take_events acks its batches itself
            for event in events:
                await stream.ack(event)
        if seen >= COUNT:
            with open(OUT, "w") as out:
                json.dump({"first": first, "last": time.monotonic(), "records": seen}, out)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--loglevel", "warn", "worker"]
    app.main()
