"""Idempotent, asynchronous, bounded writes of quotes and candles to Cassandra.

Every row's primary key is fixed by its content (a quote by its Kafka partition/offset, a
candle by symbol/interval/start), so writing it again after a replay changes nothing. Rows of
one partition go in one UNLOGGED batch (cheap for Cassandra: one mutation per partition).
Writes that time out or find replicas unavailable are retried with capped exponential backoff,
forever: the stream waits (back-pressure) rather than drop data.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from stockapp.models import Quote, QuoteRow
from stockapp.sinks.layout import candle_bucket, quote_day
from stockapp.tables.candle import Candle
from stockapp.tables.indicators import NAMES
from stockapp.timestamps import ms_to_datetime

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 20  # stays under Cassandra's default 5 KiB batch warning


def _retryable() -> tuple[type[BaseException], ...]:
    from cassandra import OperationTimedOut, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.protocol import OverloadedErrorMessage

    return (OperationTimedOut, WriteTimeout, Unavailable, NoHostAvailable, OverloadedErrorMessage)


class _Settle:
    """A future on the running loop, settled from the driver's I/O thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future = self.loop.create_future()

    def result(self, value: Any) -> None:
        self.loop.call_soon_threadsafe(self._set, value, None)

    def error(self, exc: BaseException) -> None:
        self.loop.call_soon_threadsafe(self._set, None, exc)

    def _set(self, value: Any, exc: BaseException | None) -> None:
        if self.future.done():
            return
        if exc is not None:
            self.future.set_exception(exc)
        else:
            self.future.set_result(value)


def execute(session: Any, statement: Any, params: Any = None) -> asyncio.Future:
    """Run a statement with the driver's own async I/O; the future resolves on our loop."""
    settle = _Settle()
    session.execute_async(statement, params).add_callbacks(settle.result, errback=settle.error)
    return settle.future


def execute_all(session: Any, statement: Any, params: Any = None) -> asyncio.Future:
    """Like :func:`execute`, but with every page of the result (the driver hands over the
    first page, 5,000 rows by default, and fetches the next on request)."""
    settle = _Settle()
    rows: list = []
    response = session.execute_async(statement, params)

    def page(result: Any) -> None:  # runs on the driver's thread
        rows.extend(result)
        if response.has_more_pages:
            response.start_fetching_next_page()
        else:
            settle.result(rows)

    response.add_callbacks(page, errback=settle.error)
    return settle.future


class CassandraSink:
    def __init__(
        self,
        session: Any,
        interval_ms: dict[str, int],
        concurrency: int = 32,
        max_backoff: float = 5.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.interval_ms = interval_ms
        self.semaphore = asyncio.Semaphore(concurrency)
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.retries = 0
        self.retryable = _retryable()
        self.insert_quote = session.prepare(
            "INSERT INTO stock_prices (symbol, day, ts, source_partition, source_offset, price, "
            "volume, bid, ask, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_candle = session.prepare(
            "INSERT INTO candles (symbol, interval, bucket, start, open, high, low, close, "
            "volume, trades, closed, "
            + ", ".join(NAMES)
            + ") VALUES ("
            + ", ".join("?" * (11 + len(NAMES)))
            + ")"
        )
        # USING TIMESTAMP = event time: the newest quote wins whatever order writes arrive in.
        self.update_symbol = session.prepare(
            "UPDATE symbols USING TIMESTAMP ? SET last_price = ?, last_ts = ? WHERE symbol = ?"
        )

    # -- row building ------------------------------------------------------------------------

    def _quote_params(self, row: QuoteRow) -> tuple:
        q = row.quote
        return (
            q.symbol,
            quote_day(q.ts),
            ms_to_datetime(q.ts),
            row.partition,
            row.offset,
            q.price,
            q.volume,
            q.bid,
            q.ask,
            q.source,
        )

    def _candle_params(self, c: Candle) -> tuple:
        bucket = candle_bucket(c.start, self.interval_ms[c.interval])
        return (
            c.symbol,
            c.interval,
            bucket,
            ms_to_datetime(c.start),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.trades,
            c.closed,
            *(c.indicators.get(name) for name in NAMES),
        )

    def statements(self, quotes: Iterable[QuoteRow], candles: Iterable[Candle]) -> list:
        from cassandra.query import BatchStatement, BatchType

        by_partition: dict[tuple, list] = defaultdict(list)
        latest: dict[str, Quote] = {}
        for row in quotes:
            q = row.quote
            by_partition[("q", q.symbol, quote_day(q.ts))].append(
                self.insert_quote.bind(self._quote_params(row))
            )
            if q.symbol not in latest or q.ts >= latest[q.symbol].ts:
                latest[q.symbol] = q
        for c in candles:
            bucket = candle_bucket(c.start, self.interval_ms[c.interval])
            by_partition[("c", c.symbol, c.interval, bucket)].append(
                self.insert_candle.bind(self._candle_params(c))
            )
        out: list = []
        for rows in by_partition.values():
            for i in range(0, len(rows), MAX_BATCH_ROWS):
                chunk = rows[i : i + MAX_BATCH_ROWS]
                if len(chunk) == 1:
                    out.append(chunk[0])
                    continue
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for statement in chunk:
                    batch.add(statement)
                out.append(batch)
        for q in latest.values():
            out.append(
                self.update_symbol.bind((q.ts * 1000, q.price, ms_to_datetime(q.ts), q.symbol))
            )
        return out

    # -- execution ---------------------------------------------------------------------------

    async def write(self, quotes: Iterable[QuoteRow], candles: Iterable[Candle]) -> int:
        """Write everything; returns when all of it is acknowledged by Cassandra."""
        statements = self.statements(quotes, candles)
        if statements:
            await asyncio.gather(*(self._execute(s) for s in statements))
        return len(statements)

    async def _execute(self, statement: Any) -> None:
        attempt = 0
        async with self.semaphore:
            while True:
                try:
                    await execute(self.session, statement)
                    return
                except self.retryable as exc:
                    attempt += 1
                    self.retries += 1
                    delay = min(self.max_backoff, 0.05 * 2 ** min(attempt, 10))
                    level = logging.WARNING if attempt >= 3 else logging.DEBUG
                    log.log(
                        level,
                        "cassandra write failed (%s), retry %d in %.2fs",
                        type(exc).__name__,
                        attempt,
                        delay,
                    )
                    await self.sleep(delay)
