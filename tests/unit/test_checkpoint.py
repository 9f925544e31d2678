"""The order a change is made durable in (stockapp/checkpoint.py): Cassandra, then the Kafka
deliveries, then the states and their changelog; a failed or hung step stops everything after
it; a revocation waits for the change in flight and for the changelog; only applied records
are acked."""

from __future__ import annotations

import asyncio

import pytest

from stockapp.checkpoint import Change, Checkpoint, Topics
from stockapp.models import Quote, QuoteRow
from stockapp.records import RawRecord, SideOutput
from stockapp.side_outputs import SideOutputs
from stockapp.stats import Stats
from stockapp.tables.candle import Candle
from stockapp.validation import Reason
from tests.fakes import Effects, Table

RECORD = RawRecord(b"AAPL", b"junk", 0, 7)


def make() -> tuple[Checkpoint, Effects, Table, Stats]:
    effects = Effects()
    table = Table(effects)
    stats = Stats()

    async def durable() -> None:
        effects.log.append(("durable",))

    checkpoint = Checkpoint(
        effects,
        effects.publish,
        table,
        Topics(candles="candles", signals="signals"),
        SideOutputs("quotes", stats),
        durable,
    )
    return checkpoint, effects, table, stats


def change(states: dict[str, bytes] | None = None) -> Change:
    quote = Quote(symbol="AAPL", ts=1_767_621_600_000, price=10.0, volume=1.0)
    start = 1_767_621_600_000
    candle = Candle.first("AAPL", "1m", start, start + 60_000, quote.bar())
    candle.closed = True
    return Change(
        quotes=[QuoteRow(quote, 0, 6, 0)],
        closed=[candle],
        signals=[],
        outputs=[SideOutput("quotes.dlq", RECORD, "not valid JSON", Reason.NOT_JSON)],
        states={"AAPL": b"{}"} if states is None else states,
    )


async def test_cassandra_then_kafka_then_the_states_and_their_changelog():
    checkpoint, effects, table, _ = make()
    await checkpoint.commit(change())
    assert [entry[0] for entry in effects.log] == [
        "write",
        "publish",
        "publish",
        "table",
        "durable",
    ]
    assert [p[0] for p in effects.published] == ["quotes.dlq", "candles"]
    assert effects.published[0][3]["stockapp.source.offset"] == b"7"
    assert table[b"AAPL"] == b"{}"


async def test_a_change_without_states_waits_for_no_changelog():
    checkpoint, effects, _, _ = make()
    await checkpoint.commit(change(states={}))
    assert "durable" not in [entry[0] for entry in effects.log]


async def test_a_failed_cassandra_write_publishes_nothing_and_writes_no_state():
    checkpoint, effects, table, _ = make()

    async def failing(*args: object) -> int:
        raise RuntimeError("Cassandra said no")

    effects.write = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await checkpoint.commit(change())
    assert effects.published == [] and b"AAPL" not in table


async def test_a_failed_delivery_writes_no_state():
    checkpoint, effects, table, _ = make()
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("broker said no"))
    effects.deliveries.append(failed)
    with pytest.raises(RuntimeError, match="broker said no"):
        await checkpoint.commit(change())
    assert b"AAPL" not in table and checkpoint.pending_sends == 0


async def test_a_delivery_that_does_not_come_holds_the_states_back():
    """No timeout of the checkpoint's own cuts a step short: a change whose delivery hangs
    writes no state (the producer's own timeouts end it, with an error, and it is retried)."""
    checkpoint, effects, table, _ = make()
    hung = asyncio.get_running_loop().create_future()
    effects.deliveries.append(hung)
    task = asyncio.ensure_future(checkpoint.commit(change()))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 0.05)
    assert b"AAPL" not in table and checkpoint.pending_sends == 2
    hung.set_result(None)
    await task
    assert b"AAPL" in table and checkpoint.pending_sends == 0


async def test_a_changelog_that_is_not_acknowledged_holds_the_ack_back():
    checkpoint, _, table, _ = make()
    sent = asyncio.Event()

    async def durable() -> None:
        await sent.wait()

    checkpoint.durable = durable
    task = asyncio.ensure_future(checkpoint.commit(change()))
    await asyncio.sleep(0.01)
    assert b"AAPL" in table and not task.done()  # written, not yet durable: no ack
    sent.set()
    await task


async def test_a_revocation_waits_for_the_change_in_flight_then_the_changelog():
    checkpoint, effects, _, _ = make()
    hung = asyncio.get_running_loop().create_future()
    effects.deliveries.append(hung)
    order: list[str] = []

    async def in_flight() -> None:
        async with checkpoint.lock:
            await checkpoint.commit(change())
            order.append("committed")

    batch = asyncio.ensure_future(in_flight())
    await asyncio.sleep(0)
    revocation = asyncio.ensure_future(checkpoint.revoke(lambda: order.append("forgot")))
    await asyncio.sleep(0.01)
    assert order == [] and not revocation.done()
    hung.set_result(None)
    await asyncio.gather(batch, revocation)
    assert order == ["committed", "forgot"]
    assert [entry[0] for entry in effects.log][-2:] == ["durable", "durable"]


def test_only_the_records_applied_are_acked():
    records = [RawRecord(b"A", b"{}", 0, n) for n in range(4)]
    assert Checkpoint.ackable(records, records) == [True] * 4
    assert Checkpoint.ackable(records, [records[1], records[3]]) == [False, True, False, True]
    assert Checkpoint.ackable(records, []) == [False] * 4
