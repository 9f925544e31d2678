"""The Cassandra sink's batching and retries, against a fake session."""

import threading

import pytest
from cassandra import InvalidRequest, OperationTimedOut
from cassandra.query import BatchStatement, SimpleStatement

from stockapp.models import Quote, QuoteRow
from stockapp.sinks.cassandra import CassandraSink
from stockapp.tables.candle import Bar, Candle

T0 = 1_767_621_600_000
CANDLE = Candle.first("AAPL", "1m", T0, T0 + 60_000, Bar.tick(T0, 1.0, 5.0))


class Prepared:
    def __init__(self, query: str) -> None:
        self.query = query

    def bind(self, params):
        statement = SimpleStatement(self.query)
        statement.params = params
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


async def test_rows_of_one_partition_are_batched():
    session, delays = Session(), []
    sink = make_sink(session, delays)
    count = await sink.write(rows(45) + rows(3, "MSFT"), [])
    batches = [s for s in session.executed if isinstance(s, BatchStatement)]
    assert [len(b._statements_and_parameters) for b in batches] == [20, 20, 5, 3]
    symbol_updates = [
        s for s in session.executed if "UPDATE symbols" in getattr(s, "query_string", "")
    ]
    # One "last price" update per symbol, carrying the newest quote, timestamped by event time.
    assert sorted(s.params[3] for s in symbol_updates) == ["AAPL", "MSFT"]
    aapl = next(s for s in symbol_updates if s.params[3] == "AAPL")
    assert aapl.params[1] == 54.0 and aapl.params[0] == (1_767_621_600_000 + 44) * 1000
    assert count == len(session.executed) == 6


async def test_timeouts_are_retried_with_backoff():
    session = Session([OperationTimedOut("slow"), OperationTimedOut("slow")])
    delays: list[float] = []
    sink = make_sink(session, delays)
    await sink.write([], [CANDLE])
    assert delays == [0.1, 0.2]
    assert sink.retries == 2
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
