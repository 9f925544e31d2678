"""The Cassandra sink's batching and retries, against a fake session."""

import asyncio
import threading
from unittest.mock import patch

import pytest
from cassandra import InvalidRequest, OperationTimedOut
from cassandra.query import BatchStatement, SimpleStatement

from stockapp.models import Quote, QuoteRow
from stockapp.sinks.cassandra import (
    MAX_BATCH_BYTES,
    MAX_BATCH_PARTITIONS,
    MAX_PARTITION_BATCH_BYTES,
    CassandraSink,
)
from stockapp.tables.candle import Bar, Candle

T0 = 1_767_621_600_000
CANDLE = Candle.first("AAPL", "1m", T0, T0 + 60_000, Bar.tick(T0, 1.0, 5.0))


class Prepared:
    def __init__(self, query: str) -> None:
        self.query = query

    def bind(self, params):
        statement = SimpleStatement(self.query)
        statement.params = params
        statement.values = [b"v" * 8] * len(params)  # what the sink's batch sizing reads
        return statement


class Response:
    def __init__(self, outcome) -> None:
        self.outcome = outcome

    def add_callbacks(self, callback, errback, callback_args=(), errback_args=()) -> None:
        # The driver calls back from its own thread, with the extra arguments after the
        # result or the error (ResponseFuture.add_callbacks).
        def fire() -> None:
            if isinstance(self.outcome, Exception):
                errback(self.outcome, *errback_args)
            else:
                callback(self.outcome, *callback_args)

        threading.Thread(target=fire).start()


class Session:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.executed: list = []

    def prepare(self, query: str) -> Prepared:
        return Prepared(query)

    def execute_async(self, statement, parameters=None) -> Response:
        if self.failures:
            return Response(self.failures.pop(0))
        self.executed.append(statement)
        return Response([])


def make_sink(session: Session, delays: list[float]) -> CassandraSink:
    async def sleep(delay: float) -> None:
        delays.append(delay)

    return CassandraSink(session, {"1m": 60_000}, concurrency=4, sleep=sleep)


def rows(n: int, symbol: str = "AAPL", start: int = 1_767_621_600_000) -> list[QuoteRow]:
    return [QuoteRow(Quote(symbol, start + i, 10.0 + i, 1.0), 0, i) for i in range(n)]


def added(statement) -> list:
    """The rows of an executed statement: a batch's statements, or the statement itself."""
    return getattr(statement, "added", [statement])


@pytest.fixture(autouse=True)
def batches_keep_their_statements(monkeypatch):
    # The fake session's statements are SimpleStatements with their params on the side; a
    # real batch keeps only query strings of those, so the tests keep the objects too.
    original = BatchStatement.add

    def add(self, statement, parameters=None):
        self.__dict__.setdefault("added", []).append(statement)
        return original(self, statement, parameters)

    monkeypatch.setattr(BatchStatement, "add", add)


async def test_a_symbols_rows_go_in_one_batch_when_they_fit_cassandras_limits():
    """Up to about 4 KiB over at most ten partitions: quote rows of 12 values of 8 bytes here
    count 40 + 12 * (8 + 12) = 280 bytes, so a symbol's 13 quotes and its latest price (4
    values) go together."""
    session = Session()
    sink = make_sink(session, [])
    assert 13 * 280 + 40 + 4 * 20 <= MAX_BATCH_BYTES
    count = await sink.write(rows(13) + rows(3, "MSFT"), [])
    assert [len(added(s)) for s in session.executed] == [14, 4]
    assert count == 2


async def test_a_busy_days_quotes_go_in_batches_of_their_own():
    """A batch of one partition is not size-checked by Cassandra (CASSANDRA-10876): a symbol's
    45 quotes of a day go in one batch, its latest price apart; another symbol's few rows
    share a batch as before."""
    session = Session()
    sink = make_sink(session, [])
    count = await sink.write(rows(45) + rows(3, "MSFT"), [])
    assert [len(added(s)) for s in session.executed] == [45, 1, 4]
    assert count == len(session.executed) == 3
    symbol_updates = [
        s for b in session.executed for s in added(b) if "UPDATE symbols" in s.query_string
    ]
    # One "last price" update per symbol, carrying the newest quote, timestamped by event time.
    assert sorted(s.params[3] for s in symbol_updates) == ["AAPL", "MSFT"]
    aapl = next(s for s in symbol_updates if s.params[3] == "AAPL")
    assert aapl.params[1] == 54.0 and aapl.params[0] == (1_767_621_600_000 + 44) * 1000


async def test_a_partitions_own_batches_are_bounded_too():
    session = Session()
    sink = make_sink(session, [])
    await sink.write(rows(600), [])
    per_batch = MAX_PARTITION_BATCH_BYTES // 280
    assert [len(added(s)) for s in session.executed] == [
        per_batch,
        per_batch,
        600 - 2 * per_batch,
        1,
    ]


async def test_a_batch_spans_at_most_ten_partitions():
    """Cassandra warns about unlogged batches over more than ten partitions: a symbol's quotes
    of twelve days and its latest price (13 partitions) are split at ten."""
    session = Session()
    sink = make_sink(session, [])
    day = 86_400_000
    await sink.write([QuoteRow(Quote("AAPL", T0 + i * day, 1.0, 1.0), 0, i) for i in range(12)], [])
    assert [len(added(s)) for s in session.executed] == [MAX_BATCH_PARTITIONS, 3]


@pytest.mark.parametrize("seed", range(20))
async def test_every_row_is_written_once_and_batches_of_several_partitions_stay_in_limits(seed):
    """Random mixes of a symbol's quotes over a few days and candles of many buckets."""
    import random

    from stockapp.sinks.cassandra import _row_bytes

    rng = random.Random(seed)
    session = Session()
    sink = CassandraSink(session, {"1m": 60_000, "1h": 3_600_000}, concurrency=4)
    quotes = [
        QuoteRow(Quote("AAPL", T0 + rng.randrange(3) * 86_400_000 + i, 1.0, 1.0), 0, i)
        for i in range(rng.randrange(0, 400))
    ]
    candles = [
        Candle.first("AAPL", interval, start, start + ms, Bar.tick(start, 1.0, 5.0))
        for interval, ms in (("1m", 60_000), ("1h", 3_600_000))
        for start in (T0 + k * ms * 30 for k in range(rng.randrange(0, 40)))
    ]
    statements = sink.statements(quotes, candles)
    written = [s for statement in statements for s in added(statement)]
    expected = len(quotes) + len(candles)
    inserts = [
        s
        for s in written
        if s.query_string.startswith(("INSERT INTO quotes", "INSERT INTO candles "))
    ]
    assert len(inserts) == expected
    assert len({id(s) for s in written}) == len(written)
    for statement in statements:
        rows_of = added(statement)
        keys = {_partition_of(s) for s in rows_of}
        if len(keys) > 1:
            assert len(keys) <= MAX_BATCH_PARTITIONS
            assert sum(_row_bytes(s) for s in rows_of) <= MAX_BATCH_BYTES
        else:
            assert sum(_row_bytes(s) for s in rows_of) <= max(
                MAX_PARTITION_BATCH_BYTES, _row_bytes(rows_of[0])
            )


def _partition_of(statement) -> tuple:
    """The partition a fake statement writes, from its table and its key's values."""
    query, params = statement.query_string, statement.params
    if query.startswith("INSERT INTO quotes"):
        return ("quotes", params[0], params[1].days_from_epoch)
    if query.startswith("INSERT INTO candles "):
        return ("candles", params[0], params[1], params[2])
    if query.startswith("INSERT INTO candle_buckets"):
        return ("buckets", params[0], params[1])
    return (query, params[-1])


async def test_absent_values_are_left_unset_not_written_as_null():
    """A null cell is a tombstone; reads of a busy day's quotes would hit Cassandra's
    tombstone limits. Absent bid/ask/source/session and indicators are bound UNSET."""
    from cassandra.query import UNSET_VALUE

    session, delays = Session(), []
    sink = make_sink(session, delays)
    await sink.write(rows(1), [CANDLE])
    quote, candle = (
        s
        for b in session.executed
        for s in added(b)
        if s.query_string.startswith(("INSERT INTO quotes", "INSERT INTO candles "))
    )
    assert quote.params[8:] == (UNSET_VALUE,) * 4
    assert quote.params[2] == 1_767_621_600_000  # timestamps as epoch ms
    assert UNSET_VALUE in candle.params and None not in candle.params


async def test_timeouts_are_retried_with_backoff():
    session = Session([OperationTimedOut("slow"), OperationTimedOut("slow")])
    delays: list[float] = []
    sink = make_sink(session, delays)
    await sink.write([], [CANDLE])
    assert delays == [0.1, 0.2]
    assert sink.retries == 2


async def test_writes_are_timed_and_counted_in_flight():
    """/metrics: a write statement's latency (retries included) goes to the histogram once,
    and the in-flight gauge is back at zero when it is acknowledged."""
    from stockapp.metrics import CASSANDRA_WRITE_SECONDS

    def observed() -> float:
        (metric,) = CASSANDRA_WRITE_SECONDS.collect()
        return next(s.value for s in metric.samples if s.name.endswith("_count"))

    session = Session([OperationTimedOut("slow")])
    sink = make_sink(session, [])
    before = observed()
    await sink.write([], [CANDLE])
    assert observed() == before + 1
    assert sink.in_flight == 0
    assert len(session.executed) == 1


async def test_backoff_is_capped():
    session = Session([OperationTimedOut("slow")] * 12)
    delays: list[float] = []
    sink = make_sink(session, delays)
    await sink.write([], [CANDLE])
    assert max(delays) == 5.0 and len(delays) == 12


async def test_other_errors_are_raised():
    sink = make_sink(Session([InvalidRequest("bad")]), [])
    with pytest.raises(InvalidRequest):
        await sink.write([], [CANDLE])


def bucket_rows(session: Session) -> list[tuple]:
    return [
        s.params
        for b in session.executed
        for s in added(b)
        if s.query_string.startswith("INSERT INTO candle_buckets")
    ]


async def test_a_buckets_row_is_written_with_its_first_candle():
    """The history reader finds candles through candle_buckets: each (symbol, interval,
    bucket) gets its row with the first candle written to it, once it is stored."""
    session = Session()
    sink = make_sink(session, [])
    later = Candle.first("AAPL", "1m", T0 + 60_000, T0 + 120_000, Bar.tick(T0, 1.0, 5.0))
    await sink.write([], [CANDLE, later])
    await sink.write([], [later])
    far = T0 + 10_000 * 60_000  # the next bucket
    await sink.write([], [Candle.first("AAPL", "1m", far, far + 60_000, Bar.tick(far, 1, 1))])
    bucket = T0 // (10_000 * 60_000)
    assert bucket_rows(session) == [("AAPL", "1m", bucket), ("AAPL", "1m", bucket + 1)]


async def test_a_failed_batch_writes_its_bucket_row_again():
    session = Session([InvalidRequest("bad")])
    sink = make_sink(session, [])
    with pytest.raises(InvalidRequest):
        await sink.write([], [CANDLE])
    await sink.write([], [CANDLE])
    assert len(bucket_rows(session)) == 1


class Counting(Session):
    """Answers each statement from another thread after a moment, counting how many were
    in flight at once; raises ``refuse`` from execute_async itself for the first calls."""

    def __init__(self, refuse: list[Exception] | None = None) -> None:
        super().__init__()
        self.refuse = list(refuse or [])
        self.now = 0
        self.most = 0
        self.count_lock = threading.Lock()

    def execute_async(self, statement, parameters=None):
        if self.refuse:
            raise self.refuse.pop(0)
        with self.count_lock:
            self.now += 1
            self.most = max(self.most, self.now)
        self.executed.append(statement)
        session = self

        class Later:
            def add_callbacks(self, callback, errback, callback_args=(), errback_args=()):
                def fire() -> None:
                    import time

                    time.sleep(0.001)
                    with session.count_lock:
                        session.now -= 1
                    callback([], *callback_args)

                threading.Thread(target=fire).start()

        return Later()


async def test_at_most_the_concurrency_is_in_flight_and_every_statement_is_sent_once():
    session = Counting()
    sink = CassandraSink(session, {"1m": 60_000}, concurrency=4)
    symbols = [f"S{i}" for i in range(40)]
    count = await sink.write([r for s in symbols for r in rows(2, s)], [])
    assert count == len(session.executed) == 40
    assert len({id(s) for s in session.executed}) == 40
    assert 1 <= session.most <= 4
    assert sink.in_flight == 0


class Answered:
    """A request the driver answered before handing it back, as ResponseFuture does when no
    host can take it (NoHostAvailable set in execute_async): add_callbacks calls back at once,
    on the calling thread."""

    def __init__(self, outcome) -> None:
        self.outcome = outcome

    def add_callbacks(self, callback, errback, callback_args=(), errback_args=()) -> None:
        if isinstance(self.outcome, Exception):
            errback(self.outcome, *errback_args)
        else:
            callback(self.outcome, *callback_args)


class Down(Session):
    """Fails the first ``refused`` requests at once (no host up), answers the rest at once;
    ``later``: the first ``concurrency`` requests are answered from another thread instead,
    as when the hosts go down while a write is in flight."""

    def __init__(self, refused: int, later: int = 0) -> None:
        super().__init__()
        self.refused = refused
        self.later = later
        self.calls = 0

    def execute_async(self, statement, parameters=None):
        from cassandra.cluster import NoHostAvailable

        self.calls += 1
        if self.calls <= self.later:
            self.executed.append(statement)
            return Response([])  # answered from another thread
        if self.refused > 0:
            self.refused -= 1
            return Answered(NoHostAvailable("no host up", {}))
        self.executed.append(statement)
        return Answered([])


@pytest.mark.parametrize("later", [0, 8], ids=["refused-when-sent", "down-mid-write"])
async def test_requests_refused_at_once_are_retried_without_nesting_a_call_each(later):
    """Thousands of statements refused inside the call that sends them (Cassandra down) must
    neither overflow the stack (RecursionError) nor leave the write waiting forever: all are
    retried until written."""
    session = Down(refused=3000, later=later)
    sink = CassandraSink(session, {"1m": 60_000}, concurrency=8, sleep=_no_sleep)
    symbols = [f"S{i}" for i in range(3000)]
    await asyncio.wait_for(sink.write([r for s in symbols for r in rows(1, s)], []), 30)
    assert len(session.executed) == 3000
    assert len({id(s) for s in session.executed}) == 3000
    assert sink.retries == 3000 and sink.in_flight == 0


async def test_a_statement_is_timed_from_its_own_send():
    """The write histogram times each statement from when it is sent, not from when the
    write began (the statements before it are not its latency)."""
    from stockapp.metrics import CASSANDRA_WRITE_SECONDS

    def total() -> float:
        (metric,) = CASSANDRA_WRITE_SECONDS.collect()
        return next(s.value for s in metric.samples if s.name.endswith("_sum"))

    session = Down(refused=0)  # answers inside the send: one at a time, in order
    sink = CassandraSink(session, {"1m": 60_000}, concurrency=1)
    ticks = iter(range(100))
    before = total()
    with patch("stockapp.sinks.cassandra.time.perf_counter", lambda: float(next(ticks))):
        await sink.write([r for s in ("A", "B", "C") for r in rows(1, s)], [])
    # sent at 0, 2, 4 and answered at 1, 3, 5: a second each (from the write's start: 1+3+5)
    assert total() - before == 3.0


async def _no_sleep(delay: float) -> None:
    return None


async def test_a_failure_that_is_not_retried_stops_the_round_and_is_raised():
    session = Session([InvalidRequest("bad")])
    sink = CassandraSink(session, {"1m": 60_000}, concurrency=1)
    with pytest.raises(InvalidRequest):
        await sink.write([r for s in ("A", "B", "C") for r in rows(1, s)], [])
    assert session.executed == []  # concurrency 1: nothing was sent after the failure
    assert sink.in_flight == 0
