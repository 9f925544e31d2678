"""Quix Streams computing one of stockapp's intervals: 1-minute OHLCV per symbol, in event
time, a tumbling window with the same 5 s grace, closed windows only, no sink.

Run by bench/contenders.py as ``python -m bench.quix_ohlcv`` with BENCH_* variables, under
the separate ``.venv-quix`` that ``make bench`` builds (Quix Streams pins pydantic below the
version stockapp uses). Writes ``{"first": t, "last": t, "records": n}`` (monotonic clock of
this process) to BENCH_OUT once it has processed BENCH_COUNT records, then stops.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Aggregator

COUNT = int(os.environ.get("BENCH_COUNT", "0"))
OUT = os.environ.get("BENCH_OUT", "quix-ohlcv.json")


class OHLCV(Aggregator):
    """Open and close by event time (as pandas' first/last of a time-sorted window), high,
    low, volume and trade count."""

    def initialize(self) -> Any:
        return None

    def agg(self, old: Any, new: dict, timestamp: int) -> Any:
        ts, price, volume = timestamp, new["price"], new["volume"]
        if old is None:
            return [ts, price, price, price, ts, price, volume, 1]
        open_ts, open_, high, low, close_ts, close, total, trades = old
        if ts < open_ts:
            open_ts, open_ = ts, price
        if ts >= close_ts:
            close_ts, close = ts, price
        return [
            open_ts,
            open_,
            max(high, price),
            min(low, price),
            close_ts,
            close,
            total + volume,
            trades + 1,
        ]

    def result(self, value: Any) -> dict:
        _, open_, high, low, _, close, volume, trades = value
        return {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "trades": trades,
        }


def event_time(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return value["ts"]


def main() -> None:
    seen = 0
    first: float | None = None

    def processed(topic: str, partition: int, offset: int) -> None:
        nonlocal seen, first
        if first is None:
            first = time.monotonic()
        seen += 1
        if seen == COUNT:
            with open(OUT, "w") as out:
                json.dump({"first": first, "last": time.monotonic(), "records": seen}, out)
            app.stop()

    app = Application(
        broker_address=os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092"),
        consumer_group=os.environ.get("BENCH_GROUP", "bench-quix"),
        auto_offset_reset="earliest",
        state_dir=os.environ.get("BENCH_STATE_DIR", "quix-state"),
        on_message_processed=processed,
        loglevel="WARNING",
    )
    topic = app.topic(
        os.environ["BENCH_TOPIC"], value_deserializer="json", timestamp_extractor=event_time
    )
    sdf = app.dataframe(topic)
    sdf = sdf.tumbling_window(timedelta(minutes=1), grace_ms=5000).agg(candle=OHLCV()).final()
    app.run()


if __name__ == "__main__":
    main()
