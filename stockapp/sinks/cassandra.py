"""Idempotent, asynchronous, bounded writes of quotes and candles to Cassandra.

Every row's primary key is fixed by its content (a quote by its Kafka partition/offset and
its index in the record, a candle by symbol/interval/start), so writing it again after a replay
changes nothing. A symbol's rows go in UNLOGGED batches (a handful of partitions: its quotes'
day, its candles' buckets, its latest price; a busy day's quotes in batches of their own),
which saves the driver's per-statement cost (see _batches). Writes that time out or find
replicas unavailable are retried with capped exponential backoff, forever: the stream waits
(back-pressure) rather than drop data.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from stockapp.metrics import CASSANDRA_WRITE_SECONDS
from stockapp.models import Quote, QuoteRow
from stockapp.sinks.binding import RowBinder
from stockapp.sinks.layout import candle_bucket, quote_day_number
from stockapp.tables.candle import Candle
from stockapp.tables.indicators.registry import NAMES
from stockapp.tables.signals.signal import Signal

log = logging.getLogger(__name__)

# Cassandra warns about a batch over 5 KiB (batch_size_warn_threshold) and refuses one over
# 50 KiB. Its size is that of the mutations: the values plus some bytes per cell and per row,
# estimated here from the bound values (docs/operations.md#problems-seen-and-fixed).
MAX_BATCH_BYTES = 4096
CELL_OVERHEAD_BYTES = 12
ROW_OVERHEAD_BYTES = 40
# Cassandra logs a warning for an unlogged batch over more partitions than this
# (unlogged_batch_across_partitions_warn_threshold, 10 by default).
MAX_BATCH_PARTITIONS = 10
# A batch of one partition is not size-checked (see _batches); this bounds it all the same, by
# the same estimate: about 250 raw quote rows, which Cassandra holds as a mutation of some
# 20 KiB, far below its limit (max_mutation_size, half a commit log segment: 16 MiB).
MAX_PARTITION_BATCH_BYTES = 65_536
# Symbol-interval pairs whose last written candle bucket the sink remembers (about 100 bytes
# each): 20,000 symbols of five intervals.
MAX_KNOWN_BUCKETS = 100_000


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
        outputs: tuple[str, ...] = NAMES,
    ) -> None:
        self.session = session
        self.interval_ms = interval_ms
        # The configured indicators' values, one column each (stockapp db migrate adds them).
        self.outputs = outputs
        self.concurrency = concurrency  # statements in flight at most
        self.lock = threading.Lock()  # in_flight, and a round's counts (_Flight)
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.retries = 0
        self.in_flight = 0  # statements sent and not yet acknowledged (a /metrics gauge)
        self.retryable = _retryable()
        from cassandra.query import UNSET_VALUE
        from cassandra.util import Date

        self.unset = UNSET_VALUE
        self.day = Date
        self.insert_quote = RowBinder(
            session.prepare(
                "INSERT INTO quotes (symbol, day, ts, source_partition, source_offset, "
                "source_index, price, volume, bid, ask, source, session) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
        )
        self.insert_candle = RowBinder(
            session.prepare(
                "INSERT INTO candles (symbol, interval, bucket, start, open, high, low, close, "
                "volume, trades, closed, "
                + ", ".join(outputs)
                + ") VALUES ("
                + ", ".join("?" * (11 + len(outputs)))
                + ")"
            )
        )
        # The buckets each symbol and interval has (migration 0004), for the history reader.
        # A bucket's row is written with the first candle this sink writes to it: the last
        # bucket written per symbol and interval is remembered (bounded; forgetting only
        # means writing the same row again).
        self.insert_bucket = RowBinder(
            session.prepare(
                "INSERT INTO candle_buckets (symbol, interval, bucket) VALUES (?, ?, ?)"
            )
        )
        self.buckets: dict[tuple[str, str], int] = {}
        # Signals (migration 0005), by symbol and by day; keyed by the signal's identity.
        self.insert_signal = RowBinder(
            session.prepare(
                "INSERT INTO signals_by_symbol (symbol, start, interval, rule, kind, end, vals) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
        )
        self.insert_signal_day = RowBinder(
            session.prepare(
                "INSERT INTO signals_by_day (day, start, symbol, interval, rule, kind, end, vals) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )
        )
        # USING TIMESTAMP = event time: the newest quote wins whatever order writes arrive in.
        self.update_symbol = RowBinder(
            session.prepare(
                "UPDATE symbols USING TIMESTAMP ? SET last_price = ?, last_ts = ? WHERE symbol = ?"
            )
        )

    # -- row building ------------------------------------------------------------------------

    # Timestamps are bound as epoch ms and days as Date(days since epoch): what the driver
    # sends anyway, without building a datetime per value for it to take apart again.
    # Absent values are bound UNSET, not None: None writes a tombstone per cell, and reads of a
    # busy day's quotes would run into Cassandra's tombstone limits (warned at 1,000 per query,
    # failed at 100,000). Rows are written once or again with the same content, so nothing is
    # ever cleared by a null.

    def _quote_params(self, row: QuoteRow) -> tuple:
        q = row.quote
        unset = self.unset
        return (
            q.symbol,
            self.day(quote_day_number(q.ts)),
            q.ts,
            row.partition,
            row.offset,
            row.index,
            q.price,
            q.volume,
            unset if q.bid is None else q.bid,
            unset if q.ask is None else q.ask,
            unset if q.source is None else q.source,
            unset if row.session is None else row.session,
        )

    def _or_unset(self, value: Any) -> Any:
        return self.unset if value is None else value

    def _candle_params(self, c: Candle) -> tuple:
        bucket = candle_bucket(c.start, self.interval_ms[c.interval])
        return (
            c.symbol,
            c.interval,
            bucket,
            c.start,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.trades,
            c.closed,
            *(self._or_unset(c.indicators.get(name)) for name in self.outputs),
        )

    def statements(
        self,
        quotes: Iterable[QuoteRow],
        candles: Iterable[Candle],
        signals: Iterable[Signal] = (),
        new: dict[tuple[str, str], int] | None = None,
    ) -> list:
        """The statements that write ``quotes``, ``candles``, ``signals`` and each symbol's
        latest quote: a symbol's rows go in UNLOGGED batches, each within Cassandra's limits
        for one. The candle buckets it writes rows for are added to ``new``."""
        new = {} if new is None else new
        by_symbol: dict[str, list[tuple[tuple, Any]]] = defaultdict(list)
        latest: dict[str, Quote] = {}
        for row in quotes:
            q = row.quote
            statement = self.insert_quote.bind(self._quote_params(row))
            by_symbol[q.symbol].append((("q", quote_day_number(q.ts)), statement))
            # A volume-only trade (an odd lot, an average-price print) is not a last sale.
            if not q.volume_only and (q.symbol not in latest or q.ts >= latest[q.symbol].ts):
                latest[q.symbol] = q
        known = self.buckets
        for c in candles:
            bucket = candle_bucket(c.start, self.interval_ms[c.interval])
            rows = by_symbol[c.symbol]
            rows.append(
                (("c", c.interval, bucket), self.insert_candle.bind(self._candle_params(c)))
            )
            key = (c.symbol, c.interval)
            if known.get(key) != bucket and new.get(key) != bucket:
                new[key] = bucket
                rows.append(
                    (("b", c.interval), self.insert_bucket.bind((c.symbol, c.interval, bucket)))
                )
        for signal in signals:
            rows = by_symbol[signal.symbol]
            vals = orjson.dumps(signal.values).decode()
            common = (signal.interval, signal.rule, signal.kind, signal.end, vals)
            rows.append((("g",), self.insert_signal.bind((signal.symbol, signal.start, *common))))
            day = signal.start // 86_400_000
            rows.append(
                (
                    ("gd", day),
                    self.insert_signal_day.bind(
                        (self.day(day), signal.start, signal.symbol, *common)
                    ),
                )
            )
        for q in latest.values():
            by_symbol[q.symbol].append(
                (
                    ("s",),
                    self.update_symbol.bind((q.ts * 1000, q.price, q.ts, q.symbol)),
                )
            )
        out: list = []
        for rows in by_symbol.values():
            out.extend(_batches(rows))
        return out

    # -- execution ---------------------------------------------------------------------------

    async def write(
        self,
        quotes: Iterable[QuoteRow],
        candles: Iterable[Candle],
        signals: Iterable[Signal] = (),
    ) -> int:
        """Write everything; returns when all of it is acknowledged by Cassandra."""
        new: dict[tuple[str, str], int] = {}
        statements = self.statements(quotes, candles, signals, new)
        if statements:
            await self._write_all(statements)
        # Remembered once written: a batch that failed writes its bucket rows again.
        if len(self.buckets) + len(new) > MAX_KNOWN_BUCKETS:
            self.buckets.clear()
        self.buckets.update(new)
        return len(statements)

    async def _write_all(self, statements: list[Any]) -> None:
        """Every statement acknowledged: those that fail retryably are sent again, after a
        capped exponential backoff, until they are (the stream waits; nothing is dropped)."""
        pending: list[list[Any]] = [[statement, None] for statement in statements]
        attempt = 0
        while True:
            flight = _Flight(self, pending)
            try:
                failed, exc = await flight.settled()
            except asyncio.CancelledError:
                flight.stop()  # nothing more is sent; what is in flight lands or not
                raise
            if not failed:
                return
            attempt += 1
            self.retries += len(failed)
            delay = min(self.max_backoff, 0.05 * 2 ** min(attempt, 10))
            level = logging.WARNING if attempt >= 3 else logging.DEBUG
            log.log(
                level,
                "%d cassandra writes failed (%s), retry %d in %.2fs",
                len(failed),
                type(exc).__name__,
                attempt,
                delay,
            )
            await self.sleep(delay)
            pending = failed


class _Flight:
    """One round of statements on the driver's own async I/O, at most the sink's concurrency
    in flight. Each answer sends the next statement from the driver's thread (as the driver's
    ``execute_concurrent`` does), and a single future on the loop settles once all are
    answered: an asyncio task and a wake-up of the loop for each statement cost more than
    the driver's own work for it (`python -m bench.driver`).

    The driver may answer inside the call that sends: with no host up it fails the request
    before ``execute_async`` returns, and ``add_callbacks`` then calls back at once. Such an
    answer only counts; the sending loop already running on that thread sends the next, so
    a round of thousands of refused statements does not nest a call per statement."""

    def __init__(self, sink: CassandraSink, items: list[list[Any]]) -> None:
        self.sink = sink
        self.items = items  # [statement, first sent (perf_counter) or None]
        self.sent = 0  # items[:sent] were sent
        self.outstanding = 0
        self.failed: list[list[Any]] = []  # retryable failures, to send again
        self.last_failure: BaseException | None = None
        self.error: BaseException | None = None  # the first other failure: raised
        self.stopped = False
        self.lock = sink.lock
        self.sending = threading.local()  # .active: this thread is in _fill's loop
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[tuple[list[list[Any]], BaseException | None]] = (
            self.loop.create_future()
        )

    async def settled(self) -> tuple[list[list[Any]], BaseException | None]:
        """The retryable failures (and the last one's error) once every statement sent is
        answered; raises the first other error."""
        self._fill()
        self._settle_if_done()
        return await self.done

    def stop(self) -> None:
        with self.lock:
            self.stopped = True

    def _fill(self) -> None:
        """Sends statements until the concurrency is in flight or none is left."""
        if getattr(self.sending, "active", False):
            return  # an answer given inside a send: the loop below goes on
        self.sending.active = True
        try:
            while True:
                with self.lock:
                    if (
                        self.stopped
                        or self.error is not None
                        or self.sent == len(self.items)
                        or self.outstanding >= self.sink.concurrency
                    ):
                        return
                    item = self.items[self.sent]
                    self.sent += 1
                    self.outstanding += 1
                    self.sink.in_flight += 1
                if item[1] is None:  # timed from its first send; a retry keeps it
                    item[1] = time.perf_counter()
                try:
                    future = self.sink.session.execute_async(item[0])
                except Exception as exc:  # noqa: BLE001 - answered as the driver would
                    self._answered(item, exc)
                    continue
                future.add_callbacks(
                    self._ok, errback=self._failed, callback_args=(item,), errback_args=(item,)
                )
        finally:
            self.sending.active = False

    def _ok(self, _result: Any, item: list[Any]) -> None:
        CASSANDRA_WRITE_SECONDS.observe(time.perf_counter() - item[1])
        self._answered(item, None)

    def _failed(self, exc: BaseException, item: list[Any]) -> None:
        self._answered(item, exc)

    def _answered(self, item: list[Any], exc: BaseException | None) -> None:
        with self.lock:
            self.outstanding -= 1
            self.sink.in_flight -= 1
            if exc is not None:
                if isinstance(exc, self.sink.retryable):
                    self.failed.append(item)
                    self.last_failure = exc
                elif self.error is None:
                    self.error = exc
        self._fill()
        self._settle_if_done()

    def _settle_if_done(self) -> None:
        with self.lock:
            finished = self.outstanding == 0 and (
                self.sent == len(self.items) or self.error is not None or self.stopped
            )
        if finished:
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self.done.done():
            return
        if self.error is not None:
            self.done.set_exception(self.error)
        else:
            self.done.set_result((self.failed, self.last_failure))


def _row_bytes(statement: Any) -> int:
    values = getattr(statement, "values", None) or ()
    cells = [v for v in values if isinstance(v, bytes)]
    return ROW_OVERHEAD_BYTES + sum(len(v) for v in cells) + CELL_OVERHEAD_BYTES * len(cells)


def _batches(rows: list[tuple[tuple, Any]]) -> Iterator[Any]:
    """One symbol's ``(partition, statement)`` rows as few UNLOGGED batches as Cassandra takes
    without a warning (a single row goes alone).

    Fewer statements is what saves time: each costs the driver and our futures about as much
    as a dozen bound rows (`python -m bench.driver`). Cassandra checks a batch's size only when
    it spans several partitions (CASSANDRA-10876: it warns over 5 KiB and over ten partitions,
    and refuses over 50 KiB); a batch of one partition is one mutation, written as cheaply as a
    row. So while a symbol's rows need more than one batch of at most MAX_BATCH_BYTES over at
    most MAX_BATCH_PARTITIONS partitions, a partition that would fill more than half of one
    (a busy symbol's quotes of the day) goes in batches of its own of up to
    MAX_PARTITION_BATCH_BYTES; the rest is packed within those limits."""
    by_partition: dict[tuple, list[tuple[int, Any]]] = {}
    for partition, statement in rows:
        by_partition.setdefault(partition, []).append((_row_bytes(statement), statement))
    sizes = {partition: sum(size for size, _ in part) for partition, part in by_partition.items()}
    total = sum(sizes.values())
    while total > MAX_BATCH_BYTES or len(sizes) > MAX_BATCH_PARTITIONS:
        largest = max(sizes, key=sizes.__getitem__)
        if len(sizes) > 1 and sizes[largest] <= MAX_BATCH_BYTES // 2:
            break
        total -= sizes.pop(largest)
        yield from _one_partition(by_partition.pop(largest))
    yield from _several_partitions(
        [(partition, row) for partition, part in by_partition.items() for row in part]
    )


def _one_partition(rows: list[tuple[int, Any]]) -> Iterator[Any]:
    """One partition's ``(size, statement)`` rows in batches of up to about
    MAX_PARTITION_BATCH_BYTES."""
    chunk: list[Any] = []
    size = 0
    for row, statement in rows:
        if chunk and size + row > MAX_PARTITION_BATCH_BYTES:
            yield _batch(chunk)
            chunk, size = [], 0
        chunk.append(statement)
        size += row
    if chunk:
        yield _batch(chunk)


def _several_partitions(rows: list[tuple[tuple, tuple[int, Any]]]) -> Iterator[Any]:
    """``(partition, (size, statement))`` rows in batches of at most about MAX_BATCH_BYTES
    over at most MAX_BATCH_PARTITIONS partitions, in the order they came."""
    chunk: list[Any] = []
    partitions: set[tuple] = set()
    size = 0
    for partition, (row, statement) in rows:
        if chunk and (
            size + row > MAX_BATCH_BYTES
            or (partition not in partitions and len(partitions) == MAX_BATCH_PARTITIONS)
        ):
            yield _batch(chunk)
            chunk, partitions, size = [], set(), 0
        chunk.append(statement)
        partitions.add(partition)
        size += row
    if chunk:
        yield _batch(chunk)


def _batch(chunk: list[Any]) -> Any:
    if len(chunk) == 1:
        return chunk[0]
    from cassandra.query import BatchStatement, BatchType

    unlogged = BatchStatement(batch_type=BatchType.UNLOGGED)
    for statement in chunk:
        unlogged.add(statement)
    return unlogged
