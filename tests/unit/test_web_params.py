import re

import pytest

from stockapp.web.params import (
    DEFAULT_LIMIT,
    BadRequest,
    CandleQuery,
    SignalQuery,
    parse_candle_query,
    parse_signal_query,
    parse_symbol,
    parse_time,
)

INTERVALS = ("1m", "5m", "15m", "1h", "1d")


def test_defaults():
    assert parse_candle_query("aapl", {}, INTERVALS) == CandleQuery(
        "AAPL", "1m", None, None, DEFAULT_LIMIT
    )


def test_times_in_both_forms():
    q = parse_candle_query(
        "BRK.B",
        {"interval": "5m", "start": "1767621600", "end": "2026-01-05T15:00:00-05:00"},
        INTERVALS,
    )
    assert (q.start_ms, q.end_ms) == (1_767_621_600_000, 1_767_643_200_000)
    assert parse_time("start", "1767621600.5") == 1_767_621_600_500


@pytest.mark.parametrize(
    ("symbol", "query", "fragment"),
    [
        ("AAPL", {"interval": "2m"}, "interval '2m' is not one of"),
        ("AAPL", {"start": "yesterday"}, "neither epoch seconds nor ISO-8601"),
        ("AAPL", {"start": "2026-01-05T10:00:00"}, "needs a UTC offset"),
        ("AAPL", {"start": "nan"}, "epoch seconds between"),
        ("AAPL", {"start": "-5"}, "epoch seconds between"),
        ("AAPL", {"end": "1e30"}, "epoch seconds between"),
        ("AAPL", {"start": "200", "end": "100"}, "start must be before end"),
        ("AAPL", {"start": "100", "end": "100"}, "start must be before end"),
        ("AAPL", {"limit": "0"}, "limit must be between"),
        ("AAPL", {"limit": "5001"}, "limit must be between"),
        ("AAPL", {"limit": "ten"}, "limit must be an integer"),
        ("AAPL", {"limit": "²"}, "limit must be an integer"),
        ("AAPL", {"limit": "-1"}, "limit must be an integer"),
        ("AAPL", {"foo": "1"}, "unknown query parameter"),
        ("TOO-LONG-SYMBOL-X", {}, "is not 1-15 characters"),
        ("A B", {}, "is not 1-15 characters"),
        ("AAPL'; DROP", {}, "is not 1-15 characters"),
        ("", {}, "is not 1-15 characters"),
    ],
)
def test_bad_requests_say_why(symbol, query, fragment):
    with pytest.raises(BadRequest, match=None) as info:
        parse_candle_query(symbol, query, INTERVALS)
    assert fragment in str(info.value)


def test_symbol_is_normalised():
    assert parse_symbol(" msft ") == "MSFT"
    assert parse_symbol("^gspc") == "^GSPC"


def test_signal_queries():
    assert parse_signal_query({}, INTERVALS) == SignalQuery(None, None, None, None, 100)
    q = parse_signal_query(
        {"symbol": "msft", "interval": "5m", "rule": "golden_cross", "limit": "1000"}, INTERVALS
    )
    assert q == SignalQuery("MSFT", "5m", "golden_cross", None, 1000)
    assert parse_signal_query({"before": "0"}, INTERVALS).before_ms == 0


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"limit": "0"}, "limit must be between 1 and 1000"),
        ({"limit": "x"}, "limit must be an integer"),
        ({"rule": "Bad Rule"}, "is not a rule name"),
        ({"interval": "2m"}, "interval"),
        ({"symbol": "$$$"}, "symbol"),
        ({"color": "red"}, "unknown query parameter(s): color"),
    ],
)
def test_bad_signal_queries_say_why(query, fragment):
    with pytest.raises(BadRequest) as caught:
        parse_signal_query(query, INTERVALS)
    assert fragment in str(caught.value)


def test_symbols_queries():
    from stockapp.web.params import SYMBOLS_LIMIT, SymbolsQuery, parse_symbols_query

    assert parse_symbols_query({}) == SymbolsQuery(None, "", SYMBOLS_LIMIT)
    assert parse_symbols_query({"after": "aapl", "prefix": "a", "limit": "2"}) == SymbolsQuery(
        "AAPL", "A", 2
    )
    for query, fragment in (
        ({"limit": "0"}, "limit must be between 1 and 1000"),
        ({"limit": "1001"}, "limit must be between 1 and 1000"),
        ({"prefix": "A/"}, "prefix 'A/' is not"),
        ({"after": "a b"}, "is not 1-15 characters"),
        ({"page": "2"}, "unknown query parameter(s): page"),
    ):
        with pytest.raises(BadRequest, match=re.escape(fragment)):
            parse_symbols_query(query)


async def test_symbols_come_a_page_at_a_time_in_order():
    from stockapp.settings import load_settings
    from stockapp.web.reader import Reader

    reader = Reader(load_settings())
    names = ["A", "AA", "AAPL", "AMZN", "B", "BRK.B", "MSFT"]
    symbols = [{"symbol": n, "last_price": 1.0, "last_time": 0} for n in names]
    reader._symbols = (float("inf"), symbols)  # read already (never stale)

    async def pages(prefix: str, limit: int) -> list[list[str]]:
        got, after = [], None
        while True:
            page, after = await reader.symbols_page(after, prefix, limit)
            got.append([s["symbol"] for s in page])
            if after is None:
                return got

    assert await pages("", 3) == [["A", "AA", "AAPL"], ["AMZN", "B", "BRK.B"], ["MSFT"]]
    assert await pages("A", 2) == [["A", "AA"], ["AAPL", "AMZN"]]
    assert await pages("B", 5) == [["B", "BRK.B"]]
    assert await pages("C", 5) == [[]]
    assert await pages("", 7) == [names]
