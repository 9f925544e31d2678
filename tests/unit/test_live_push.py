"""Live push: a forming candle goes out as soon as its batch is applied, a closed candle only
once it is stored, and a client never receives a candle older than one it already has."""

from __future__ import annotations

import asyncio

import orjson

from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from stockapp.web import live
from tests.fakes import Effects, Table

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC


def tick(symbol: str, ts: int, price: float, offset: int) -> RawRecord:
    key = symbol.encode()
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": 10}
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


def setup():
    proc, effects, subscriber, _ = setup_hub()
    return proc, effects, subscriber


def setup_hub():
    effects = Effects()
    settings = load_settings().model_copy(update={"intervals": ("1m",)})
    proc = QuoteProcessor(
        settings, Table(effects), effects, effects.publish, clock=lambda: (T0 + 3_600_000) / 1000
    )
    hub = live.Hub(lambda: proc)
    subscriber = hub.subscribe("AAPL", "1m")

    def applied(touched, closed):
        hub.on_applied(touched, closed)
        effects.log.append(("applied", subscriber.queue.qsize()))

    def changed(touched, closed, signals):
        effects.log.append(("changed",))
        hub.on_change(touched, closed, signals)

    proc.applied_listeners.append(applied)
    proc.listeners.append(changed)
    return proc, effects, subscriber, hub


def drain(subscriber: live.Subscriber) -> list[list[tuple[int, float, bool]]]:
    out = []
    while True:
        try:
            messages = subscriber.queue.get_nowait()
        except asyncio.QueueEmpty:
            return out
        candles = [m["candle"] for m in messages]
        out.append([(c["t"] * 1000, c["c"], c["closed"]) for c in candles])


async def test_a_forming_candle_is_pushed_before_its_batch_is_stored():
    proc, effects, subscriber = setup()
    await proc.process([tick("AAPL", T0, 10.0, 0), tick("AAPL", T0 + 1000, 11.0, 1)])
    kinds = [entry[0] for entry in effects.log]
    # Told before Cassandra and the table; told again once in Cassandra, before the Kafka
    # records and the states (what the history API reads is there: the client may ask it).
    assert kinds.index("applied") < kinds.index("write") < kinds.index("changed")
    assert kinds.index("changed") < kinds.index("table")
    assert ("applied", 1) in effects.log  # on its way to the client before the write
    # One message: the forming candle, pushed when applied and not repeated once stored.
    assert drain(subscriber) == [[(T0, 11.0, False)]]


async def test_a_closed_candle_and_the_one_after_it_wait_for_storage_in_order():
    proc, effects, subscriber = setup()
    await proc.process([tick("AAPL", T0, 10.0, 0)])
    drain(subscriber)
    effects.log.clear()
    await proc.process([tick("AAPL", T0 + 66_000, 12.0, 1)])  # closes 14:00, starts 14:01
    # Nothing early (the batch closed a candle of the subscription); once in Cassandra (not
    # waiting for the candles topic and the changelog): the closed candle, then the forming
    # one.
    kinds = [entry[0] for entry in effects.log]
    assert kinds.index("write") < kinds.index("changed") < kinds.index("publish")
    assert drain(subscriber) == [[(T0, 10.0, True), (T0 + 60_000, 12.0, False)]]


async def test_a_listener_that_fails_does_not_fail_the_batch():
    proc, effects, _ = setup()

    def broken(touched, closed):
        raise RuntimeError("a viewer's bug")

    proc.applied_listeners.insert(0, broken)
    assert await proc.process([tick("AAPL", T0, 10.0, 0)])
    assert proc.stats["quotes"] == 1


async def test_a_client_that_subscribes_while_a_batch_is_stored_gets_its_forming_candle():
    proc, effects, first, hub = setup_hub()
    hub_ref = {}

    def subscribe_now(touched, closed):
        # on_applied has run (the listener before this one): a client arrives now.
        hub_ref["late"] = hub.subscribe("AAPL", "1m")

    proc.applied_listeners.append(subscribe_now)
    await proc.process([tick("AAPL", T0, 10.0, 0)])
    assert drain(first) == [[(T0, 10.0, False)]]
    assert drain(hub_ref["late"]) == [[(T0, 10.0, False)]]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_closed_candle_pushed_live_is_never_shown_forming_again():
    """A clock close is pushed once in Cassandra; the rest of its commit fails, so it is
    dropped and the window reopens until a later tick closes it again. The charts, told it
    is closed (final), must not be told it is forming."""
    effects = Effects()
    settings = load_settings().model_copy(update={"intervals": ("1m",), "grace_seconds": 5.0})
    clock = Clock(T0 / 1000 + 10)
    proc = QuoteProcessor(settings, Table(effects), effects, effects.publish, clock=clock)
    proc.checkpoint.retry_delay = 0.01
    hub = live.Hub(lambda: proc)
    sub = hub.subscribe("AAPL", "1m")
    proc.applied_listeners.append(hub.on_applied)
    proc.listeners.append(hub.on_change)

    await proc.process([tick("AAPL", T0 + 1000, 10.0, 0)])
    drain(sub)
    # 14:00 + grace: the clock closes the minute; the candles topic refuses it once (step 2).
    clock.now = T0 / 1000 + 65
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("broker away"))
    effects.deliveries.append(failed)
    await proc.on_timer()
    await proc.checkpoint.drain()
    # A quote of the next minute: the failed close left 14:00 open in the stored state.
    await proc.process([tick("AAPL", T0 + 61_000, 11.0, 1)])
    told = [c for m in drain(sub) for c in m if c[0] == T0]
    # Once a chart is told 14:00 is closed (final), it must never be told it is forming.
    first_closed = next((i for i, c in enumerate(told) if c[2]), len(told))
    assert all(c[2] for c in told[first_closed:]), told
