"""The Alpha Vantage source against a local fake server speaking the documented formats."""

import logging

import pytest

from stockapp.sources.alphavantage import AlphaVantageClient, AlphaVantageError, Poller
from tests.fake_alphavantage import (
    BAD_SYMBOL,
    RATE_LIMIT_INFO,
    RATE_LIMIT_NOTE,
    FakeAlphaVantage,
    global_quote,
    intraday,
)

KEY = "SECRET-KEY-123"


@pytest.fixture
async def fake():
    server = FakeAlphaVantage()
    url = await server.start()
    yield server, url
    await server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_621_600.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def poll(url: str, symbols: list[str], rounds: int, clock: Clock, **kw) -> tuple:
    async with AlphaVantageClient(url, KEY) as client:
        poller = Poller(client, symbols, every=30.0, sleep=clock.sleep, clock=clock, **kw)
        quotes = [q async for q in poller.quotes(rounds=rounds)]
    return quotes, poller.stats


async def test_quotes_volume_increments_and_unchanged_skipped(fake):
    server, url = fake
    server.queue(
        "GLOBAL_QUOTE",
        "IBM",
        global_quote("IBM", 190.0, 1_000_000, "2026-01-05"),
        global_quote("IBM", 190.5, 1_000_300, "2026-01-05"),
        global_quote("IBM", 190.5, 1_000_300, "2026-01-05"),  # unchanged
        global_quote("IBM", 190.4, 1_000_250, "2026-01-05"),  # total went down
        global_quote("IBM", 191.0, 5_000, "2026-01-06"),
    )  # a new day
    clock = Clock()
    quotes, stats = await poll(url, ["IBM"], 5, clock)
    assert [(q.price, q.volume) for q in quotes] == [
        (190.0, 0.0),
        (190.5, 300.0),
        (190.4, 0.0),
        (191.0, 5000.0),
    ]
    assert all(q.symbol == "IBM" and q.source == "alphavantage" for q in quotes)
    assert quotes[1].ts - quotes[0].ts == 30_000  # stamped when polled, every 30 s
    assert stats.unchanged == 1 and clock.sleeps == [30.0] * 4
    assert server.requests[0] == {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": KEY}


async def test_rate_limit_backs_off_and_goes_on(fake, caplog):
    server, url = fake
    server.queue(
        "GLOBAL_QUOTE", "IBM", RATE_LIMIT_NOTE, global_quote("IBM", 190.0, 10, "2026-01-05")
    )
    server.queue("GLOBAL_QUOTE", "MSFT", global_quote("MSFT", 410.0, 10, "2026-01-05"))
    clock = Clock()
    with caplog.at_level(logging.WARNING):
        quotes, stats = await poll(url, ["IBM", "MSFT"], 2, clock)
    assert [q.symbol for q in quotes] == ["MSFT", "IBM"]  # MSFT went on meanwhile
    assert stats.rate_limited == 1 and clock.sleeps[0] == 60.0
    assert "rate limited" in caplog.text and "Alpha Vantage" in caplog.text
    assert KEY not in caplog.text


async def test_consecutive_rate_limits_double_the_back_off(fake):
    server, url = fake
    server.queue(
        "GLOBAL_QUOTE",
        "IBM",
        RATE_LIMIT_NOTE,
        RATE_LIMIT_INFO,
        RATE_LIMIT_NOTE,
        global_quote("IBM", 190.0, 10, "2026-01-05"),
    )
    clock = Clock()
    quotes, stats = await poll(url, ["IBM"], 4, clock)
    assert len(quotes) == 1 and stats.rate_limited == 3
    assert [s for s in clock.sleeps if s >= 60] == [60.0, 120.0, 240.0]


async def test_bad_symbol_is_reported_once_and_dropped(fake, caplog):
    server, url = fake
    server.queue("GLOBAL_QUOTE", "NOPE", BAD_SYMBOL)
    server.queue(
        "GLOBAL_QUOTE",
        "IBM",
        global_quote("IBM", 190.0, 10, "2026-01-05"),
        global_quote("IBM", 191.0, 20, "2026-01-05"),
    )
    with caplog.at_level(logging.WARNING):
        quotes, stats = await poll(url, ["NOPE", "IBM"], 2, Clock())
    assert stats.bad_symbols == ["NOPE"] and len(quotes) == 2
    assert sum(1 for r in server.requests if r["symbol"] == "NOPE") == 1
    assert "skipping NOPE" in caplog.text and KEY not in caplog.text


async def test_http_errors_are_reported_not_fatal(fake):
    server, url = fake
    server.queue("GLOBAL_QUOTE", "IBM", 503, global_quote("IBM", 190.0, 10, "2026-01-05"))
    quotes, stats = await poll(url, ["IBM"], 2, Clock())
    assert stats.errors == 1 and len(quotes) == 1


async def test_intraday_bars_in_eastern_time_without_repeats(fake):
    server, url = fake
    first = {
        "2026-01-05 09:30:00": (10, 12, 9, 11, 100),
        "2026-01-05 09:35:00": (11, 11.5, 10.5, 11.2, 50),
    }
    second = {**first, "2026-01-05 09:40:00": (11.2, 11.4, 11.0, 11.3, 70)}
    server.queue(
        "TIME_SERIES_INTRADAY",
        "IBM",
        intraday("IBM", "5min", first),
        intraday("IBM", "5min", second),
    )
    quotes, _ = await poll(url, ["IBM"], 2, Clock(), mode="intraday", interval="5min")
    assert [q.ts for q in quotes] == [
        1_767_623_400_000,
        1_767_623_700_000,
        1_767_624_000_000,
    ]  # 09:30 New York = 14:30 UTC
    assert quotes[0].to_json() == {
        "symbol": "IBM",
        "ts": 1_767_623_400_000,
        "open": 10.0,
        "high": 12.0,
        "low": 9.0,
        "price": 11.0,
        "volume": 100.0,
        "bar_seconds": 300,
        "source": "alphavantage",
    }
    assert server.requests[0]["interval"] == "5min"


async def test_the_newest_bar_is_published_again_when_the_source_revises_it(fake):
    server, url = fake
    first = {
        "2026-01-05 09:30:00": (10, 12, 9, 11, 100),
        "2026-01-05 09:35:00": (11, 11.5, 10.5, 11.2, 50),  # still forming at the source
    }
    revised = {**first, "2026-01-05 09:35:00": (11, 11.8, 10.5, 11.6, 90)}
    server.queue(
        "TIME_SERIES_INTRADAY",
        "IBM",
        intraday("IBM", "5min", first),
        intraday("IBM", "5min", revised),
        intraday("IBM", "5min", revised),
    )
    quotes, stats = await poll(url, ["IBM"], 3, Clock(), mode="intraday", interval="5min")
    assert [(q.ts, q.price, q.volume) for q in quotes] == [
        (1_767_623_400_000, 11.0, 100.0),
        (1_767_623_700_000, 11.2, 50.0),
        (1_767_623_700_000, 11.6, 90.0),  # the revision; the third poll changed nothing
    ]
    assert stats.unchanged == 1


def test_missing_key_is_refused_and_key_never_shown():
    with pytest.raises(AlphaVantageError, match="ALPHA_VANTAGE_API_KEY"):
        AlphaVantageClient("http://127.0.0.1:1/query", "")
    assert KEY not in repr(AlphaVantageClient("http://127.0.0.1:1/query", KEY))


async def test_unreachable_server_is_an_error_not_a_crash():
    async with AlphaVantageClient("http://127.0.0.1:1/query", KEY, timeout=2) as client:
        with pytest.raises(AlphaVantageError) as info:
            await client.global_quote("IBM")
    assert KEY not in str(info.value)
