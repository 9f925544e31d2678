"""Quix Streams computing one of stockapp's intervals: 1-minute OHLCV per symbol, in event
time, a tumbling window with the same 5 s grace, closed windows only; with no sink, or (with
BENCH_CASSANDRA_KEYSPACE set) writing each closed candle to Cassandra.

Run by bench/contenders.py as ``python -m bench.quix_ohlcv`` with BENCH_* variables, under
the separate ``.venv-quix`` that ``make bench`` builds (Quix Streams pins pydantic below the
version stockapp uses). Writes ``{"first": t, "last": t, "records": n}`` (monotonic clock of
this process) to BENCH_OUT once it has processed BENCH_COUNT records (with the sink: once the
checkpoint that follows the last record has stored its candles), then stops.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Aggregator
from quixstreams.sinks import BatchingSink, SinkBatch

COUNT = int(os.environ.get("BENCH_COUNT", "0"))
OUT = os.environ.get("BENCH_OUT", "quix-ohlcv.json")
KEYSPACE = os.environ.get("BENCH_CASSANDRA_KEYSPACE", "")
# The table is created by the harness (bench/contenders.py QUIX_CANDLES), not here.
INSERT = (
    "INSERT INTO quix_candles (symbol, start, open, high, low, close, volume, trades) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


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


class CandleSink(BatchingSink):
    """Closed candles to Cassandra at each checkpoint (Quix's contract for a batching sink:
    a checkpoint commits its offsets only once ``flush`` has written its batches), with the
    driver's concurrent execution, 64 in flight: the raw-row writer's setting."""

    def __init__(self, covers_all: Any, finish: Any) -> None:
        super().__init__()
        self.covers_all = covers_all  # () -> bool: every record was processed before this flush
        self.finish = finish

    def setup(self) -> None:
        from cassandra.cluster import Cluster

        hosts = os.environ.get("BENCH_CASSANDRA_HOSTS", "127.0.0.1").split(",")
        port = int(os.environ.get("BENCH_CASSANDRA_PORT", "9042"))
        self.cluster = Cluster(hosts, port=port)
        self.session = self.cluster.connect(KEYSPACE)
        self.insert = self.session.prepare(INSERT)

    def write(self, batch: SinkBatch) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        rows = []
        for item in batch:
            candle = item.value["candle"]
            rows.append(
                (
                    item.key.decode(),
                    item.value["start"],
                    candle["open"],
                    candle["high"],
                    candle["low"],
                    candle["close"],
                    float(candle["volume"]),
                    candle["trades"],
                )
            )
        for ok, result in execute_concurrent_with_args(
            self.session, self.insert, rows, concurrency=64, raise_on_first_error=True
        ):
            if not ok:
                raise result

    def flush(self) -> None:
        covering = self.covers_all()
        super().flush()
        if covering:  # the candles of the last record are stored
            self.finish()


def main() -> None:
    seen = 0
    first: float | None = None
    done = False

    def finish() -> None:
        nonlocal done
        if done:  # the checkpoints of the shutdown come after
            return
        done = True
        with open(OUT, "w") as out:
            json.dump({"first": first, "last": time.monotonic(), "records": seen}, out)
        app.stop()

    def processed(topic: str, partition: int, offset: int) -> None:
        nonlocal seen, first
        if first is None:
            first = time.monotonic()
        seen += 1
        if seen == COUNT and not KEYSPACE:
            finish()

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
    if KEYSPACE:
        sdf.sink(CandleSink(lambda: seen >= COUNT, finish))
    app.run()


if __name__ == "__main__":
    main()
