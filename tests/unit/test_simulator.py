"""The simulator: deterministic, valid per the contract, timed as documented."""

import itertools

import orjson

from stockapp.sources.simulator import DEFAULT_SYMBOLS, Simulator
from stockapp.validation import parse_quote

START = 1_767_621_600_000


def take(sim: Simulator, n: int, now=None) -> list:
    return list(itertools.islice(sim.ticks(now), n))


def test_same_seed_same_ticks():
    a = take(Simulator(list(DEFAULT_SYMBOLS), 7, 10.0, START), 500)
    b = take(Simulator(list(DEFAULT_SYMBOLS), 7, 10.0, START), 500)
    c = take(Simulator(list(DEFAULT_SYMBOLS), 8, 10.0, START), 500)
    assert a == b and a != c


def test_every_tick_is_a_valid_quote():
    for tick in take(Simulator(["AAPL", "BRK.B", "^GSPC"], 1, 100.0, START), 2000):
        quote = parse_quote(tick.symbol.encode(), orjson.dumps(tick.to_json()), START + 10**9, 0)
        assert quote == tick
        assert quote.bid < quote.price < quote.ask
        assert quote.volume >= 1 and quote.source == "simulator"
    assert {t.symbol for t in take(Simulator(["A", "B", "C"], 1, 1.0, START), 300)} == {
        "A",
        "B",
        "C",
    }


def test_event_time_follows_rate_and_speedup():
    ticks = take(Simulator(["X"], 3, 50.0, START, speedup=60.0), 101)
    # 50 ticks per wall second, 60 event seconds per wall second: 1.2 s of event time apart.
    assert ticks[100].ts - ticks[0].ts == 120_000


def test_replay_never_runs_ahead_of_the_present():
    ticks = take(Simulator(["X"], 3, 1.0, START, speedup=3600.0), 10, now=lambda: START + 5_000)
    assert max(t.ts for t in ticks) == START + 5_000


def test_prices_move_like_gbm():
    ticks = take(Simulator(["X"], 5, 1.0, START, speedup=3600.0), 2000)
    prices = [t.price for t in ticks]
    assert len(set(prices)) > 1000  # they move
    assert 0.2 < prices[-1] / prices[0] < 5  # but within reason over ~2000 hours


async def test_a_waiting_async_source_stops_at_once():
    import asyncio

    from stockapp.produce import _each

    async def poller():
        yield {"symbol": "X"}
        await asyncio.sleep(3600)  # a poller backing off after a rate limit
        yield {"symbol": "never"}

    stop = asyncio.Event()
    got = []

    async def consume() -> None:
        async for quote in _each(poller(), stop):
            got.append(quote["symbol"])

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert got == ["X"]
