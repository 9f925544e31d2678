"""The simulator: deterministic, valid per the contract, timed as documented."""

import datetime as dt
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


def test_with_a_calendar_it_trades_only_in_the_sessions_that_count():
    from stockapp.tables.sessions import calendar

    regular = calendar("XNYS", "regular", "America/New_York")
    start = 1_795_510_800_000  # 2026-11-24 01:00 New York: before the pre-market
    sim = Simulator(["X", "Y"], 3, 1.0, start, speedup=30.0, calendar=regular)
    ticks = take(sim, 3000)
    assert all(regular.segment(t.ts) is not None for t in ticks)
    days = sorted({regular.segment(t.ts).day_open for t in ticks})
    # 25 trading hours: Tuesday, Wednesday, the half-day Friday, Monday, Tuesday; none on
    # Thanksgiving or the weekend.
    dates = [dt.datetime.fromtimestamp(d / 1000, regular.tz).day for d in days]
    assert dates == [24, 25, 27, 30, 1]
    assert ticks[0].ts == regular.next_open(start)  # the first at the open


def test_a_live_simulator_waits_for_the_open():
    from stockapp.sources.simulator import SessionPacer
    from stockapp.tables.sessions import calendar

    regular = calendar("XNYS", "regular", "America/New_York")
    start = 1_796_047_200_000  # 2026-11-30 09:00 New York: half an hour before the open
    opens = start + 30 * 60_000
    sim = Simulator(["X"], 3, 10.0, start, calendar=regular)
    clock = [start + 1_000]  # wall ms
    pacer = SessionPacer(sim, 10.0, lambda: clock[0] / 1000)
    ticks = sim.ticks(now_ms=lambda: clock[0])
    first = next(ticks)
    assert first.ts == opens  # stamped at the open, not at the (closed) present
    due = pacer(0, first)
    assert due == (opens - clock[0]) / 1000 + 0.005  # held until just after the open
    assert pacer(0, first) == due  # asked again while waiting: the same
    clock[0] = opens + 10  # sent then; the next is made and paced from there
    second = next(ticks)
    assert second.ts == opens + 10 and sim.waits_for is None
    assert pacer(1, second) == due + 0.1


def test_a_history_skips_closed_time_whatever_the_step():
    from stockapp.tables.sessions import calendar

    regular = calendar("XNYS", "regular", "America/New_York")
    start = 1_796_047_200_000  # 2026-11-30 09:00 New York
    # One tick a day of event time would land on the same closed minute each day: each
    # skip goes to the next open instead.
    sim = Simulator(["X"], 3, 1.0, start, speedup=86_400.0, calendar=regular)
    ticks = take(sim, 5)
    assert all(regular.segment(t.ts) is not None for t in ticks)
    assert len({regular.segment(t.ts).day_open for t in ticks}) == 5
