"""The Cassandra sink's batching and retries, against a fake session."""

import threading

import pytest
from cassandra import InvalidRequest, OperationTimedOut
from cassandra.query import BatchStatement, SimpleStatement

from stockapp.models import Quote, QuoteRow
from stockapp.sinks.cassandra import MAX_BATCH_BYTES, CassandraSink
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

    def add_callbacks(self, callback, errback) -> None:
        # The driver calls back from its own thread.
        def fire() -> None:
            if isinstance(self.outcome, Exception):
                errback(self.outcome)
            else:
                callback(self.outcome)

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


async def test_a_symbols_rows_are_batched_within_cassandras_limits():
    session, delays = Session(), []
    sink = make_sink(session, delays)
    count = await sink.write(rows(45) + rows(3, "MSFT"), [])
    # A symbol's quotes and its latest price go together, up to about 4 KiB a batch: quote
    # rows of 12 values of 8 bytes here count 40 + 12 * (8 + 12) = 280 bytes, so 14 a batch.
    assert MAX_BATCH_BYTES // 280 == 14
    # (the latest-price row, 4 values, goes with the last 3 quotes)
    assert [len(added(s)) for s in session.executed] == [14, 14, 14, 4, 4]
    assert count == len(session.executed) == 5
    symbol_updates = [
        s for b in session.executed for s in added(b) if "UPDATE symbols" in s.query_string
    ]
    # One "last price" update per symbol, carrying the newest quote, timestamped by event time.
    assert sorted(s.params[3] for s in symbol_updates) == ["AAPL", "MSFT"]
    aapl = next(s for s in symbol_updates if s.params[3] == "AAPL")
    assert aapl.params[1] == 54.0 and aapl.params[0] == (1_767_621_600_000 + 44) * 1000


async def test_a_batch_spans_at_most_ten_partitions():
    """Cassandra warns about unlogged batches over more than ten partitions: a symbol's quotes
    of twelve days and its latest price (13 partitions) are split at ten."""
    from stockapp.sinks.cassandra import MAX_BATCH_PARTITIONS

    session = Session()
    sink = make_sink(session, [])
    day = 86_400_000
    await sink.write([QuoteRow(Quote("AAPL", T0 + i * day, 1.0, 1.0), 0, i) for i in range(12)], [])
    assert [len(added(s)) for s in session.executed] == [MAX_BATCH_PARTITIONS, 3]


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
