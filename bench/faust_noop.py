"""Faust's ceiling: an agent that takes the benchmark stream in batches and does nothing else.

Run by bench/throughput.py as ``python -m bench.faust_noop`` with BENCH_* variables; writes
``{"first": t, "last": t, "records": n}`` (monotonic clock of this process) to BENCH_OUT once
it has seen BENCH_COUNT records. BENCH_FAUST_CONSUMER=stockapp runs it on the worker's Faust
app class and consumer (stockapp/faust_compat.py: the fetch loop without per-record tasks).
"""

from __future__ import annotations

import json
import os
import sys
import time

import faust

from stockapp.faust_compat import SafeSeekApp

TOPIC = os.environ.get("BENCH_TOPIC", "bench.quotes")
COUNT = int(os.environ.get("BENCH_COUNT", "0"))
OUT = os.environ.get("BENCH_OUT", "faust-noop.json")

App = SafeSeekApp if os.environ.get("BENCH_FAUST_CONSUMER") == "stockapp" else faust.App
app = App(
    os.environ.get("BENCH_APP_ID", "bench-faust-noop"),
    broker=f"kafka://{os.environ.get('BENCH_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    web_host="127.0.0.1",
    web_port=int(os.environ.get("BENCH_WEB_PORT", "6199")),
    consumer_auto_offset_reset="earliest",
    topic_disable_leader=True,
)
topic = app.topic(TOPIC, key_serializer="raw", value_serializer="raw")


@app.agent(topic)
async def noop(stream: faust.StreamT) -> None:
    seen = 0
    first = None
    async for events in stream.take_events(5000, within=0.1):
        if first is None:
            first = time.monotonic()
        seen += len(events)
        if seen >= COUNT:
            with open(OUT, "w") as out:
                json.dump({"first": first, "last": time.monotonic(), "records": seen}, out)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--loglevel", "warn", "worker"]
    app.main()
