"""The quotes agent, run by Faust's in-memory test context: records reach the processor with
their key, bytes, partition and offset, in batches."""

import asyncio
import gc

import orjson
import pytest

from stockapp.agents import quotes
from stockapp.processing import QuoteProcessor
from stockapp.settings import load_settings
from tests.fakes import Effects, Port, Table

T0 = 1_767_621_600_000


@pytest.fixture
def processor(monkeypatch):
    effects = Effects()
    proc = QuoteProcessor(
        load_settings(),
        Table(effects),
        effects,
        effects.publish,
        clock=lambda: (T0 + 3_600_000) / 1000,
        port=Port(generation=lambda: quotes.app.consumer_generation_id),
    )
    monkeypatch.setattr(quotes.app, "processor", proc)
    return proc, effects


@pytest.fixture(params=["queue", "stream"])
def delivery(request, monkeypatch):
    """Each way the agent can take its records (``STOCKAPP_DELIVERY``): the acks must not
    depend on it."""
    monkeypatch.setattr(
        quotes, "settings", quotes.settings.model_copy(update={"delivery": request.param})
    )
    return request.param


async def put(agent, body: dict):
    """A record into the test context's channel, not waiting for it to be processed: the test
    context learns of that from a stream processor, which the queue delivery does not run
    (stockapp/delivery.py)."""
    return await agent.put(orjson.dumps(body), key=b"AAPL", wait=False)


@pytest.mark.parametrize("delivery", ["queue", "stream"])
async def test_agent_feeds_batches_to_the_processor(processor, monkeypatch, delivery):
    proc, effects = processor
    monkeypatch.setattr(
        quotes, "settings", quotes.settings.model_copy(update={"delivery": delivery})
    )
    async with quotes.process_quotes.test_context() as agent:
        # wait=False: the test context learns of a processed record from a stream processor,
        # and the queue delivery does not run the stream (stockapp/delivery.py).
        for i in range(120):
            body = {"symbol": "AAPL", "ts": T0 + i * 1000, "price": 10.0 + i, "volume": 1}
            await agent.put(orjson.dumps(body), key=b"AAPL", wait=False)
        await agent.put(b"not json", key=b"AAPL", wait=False)
        for _ in range(100):
            if proc.stats["quotes"] + proc.stats["invalid"] == 121:
                break
            await asyncio.sleep(0.05)
    assert proc.stats["quotes"] == 120 and proc.stats["invalid"] == 1
    assert [c.start for c in effects.candles if c.interval == "1m"] == [T0]
    assert {p[0] for p in effects.published} == {"quotes.dlq", "candles"}
    assert proc.states["AAPL"].last_offset == 119


def test_rocksdb_store_files_keys_under_their_own_partition(tmp_path):
    from aiokafka.partitioner import DefaultPartitioner

    from stockapp.app import app
    from stockapp.faust_compat import KeyPartitionedRocksDBStore
    from stockapp.tables.definitions import symbol_state

    store = KeyPartitionedRocksDBStore(
        "keyrocksdb://", app, symbol_state, table_name="t", key_type=bytes
    )

    class FakeDB(dict):
        def put(self, key, value):
            self[key] = value

    store._dbs = {}
    store._open_for_partition = lambda partition: FakeDB()
    partitioner = DefaultPartitioner()
    for symbol in (b"AAPL", b"MSFT", b"S07", b"BRK.B"):
        store._set(symbol, b"{}")  # no current event: Faust's own store would assert here
        expected = partitioner(symbol, list(range(8)), list(range(8)))
        assert store._key_index[symbol] == expected
        assert symbol in store._dbs[expected]


async def test_publish_hands_back_the_delivery_not_the_queueing(monkeypatch):
    """The replay guard (the state's last offset) is written once the processor has awaited
    what publish returns, so that must be the broker's acknowledgement, not the queueing."""
    delivered = asyncio.get_running_loop().create_future()
    sent = []

    async def send(**kwargs):
        sent.append(kwargs)
        return delivered

    monkeypatch.setattr(quotes.output_topics["quotes.dlq"], "send", send)
    delivery = await asyncio.wait_for(quotes.publish("quotes.dlq", b"K", b"V", []), 1)
    assert sent and sent[0]["force"] is True
    assert delivery is delivered and not delivery.done()


async def test_a_batch_is_acked_only_once_it_is_stored(processor, monkeypatch, delivery):
    """SIGTERM cancels the agent mid-batch: that batch must not be acked (Faust would commit
    its offsets on the way out and the restarted worker would skip it). Faust's take_events
    acks in a ``finally``; the agent must not."""
    proc, _ = processor
    started = asyncio.Event()

    async def stuck(change, written=None):
        started.set()
        await asyncio.Event().wait()  # a batch stuck on a Cassandra outage

    monkeypatch.setattr(proc.checkpoint, "commit", stuck)
    async with quotes.process_quotes.test_context() as agent:
        body = {"symbol": "AAPL", "ts": T0, "price": 10.0, "volume": 1}
        events = [await put(agent, body) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 5)
    for _ in range(5):  # let the loop run the abandoned batch generator's finalisers
        gc.collect()
        await asyncio.sleep(0.01)
    assert [e.message.acked for e in events] == [False, False, False]


async def test_an_agent_that_fails_stops_the_worker_instead_of_being_restarted(
    processor, monkeypatch, delivery
):
    """Faust restarts an agent that raised on the stream where it left off: the batch queued
    to be stored would stay unacked and never be fetched again, while later batches stored
    past it. The worker is stopped instead (it resumes from the committed offsets)."""
    proc, _ = processor
    stored = asyncio.Event()
    crashed: list[BaseException] = []
    submitted = []
    real_submit = quotes._submit

    async def stuck(change, written=None):
        stored.set()
        await asyncio.Event().wait()  # the first batch's store hangs

    async def submit(stream, proc, events, last):
        submitted.append(len(events))
        if len(submitted) > 1:
            raise RuntimeError("a bug in the agent")
        await real_submit(stream, proc, events, last)

    async def crash(exc):
        crashed.append(exc)

    monkeypatch.setattr(proc.checkpoint, "commit", stuck)
    monkeypatch.setattr(quotes, "_submit", submit)
    monkeypatch.setattr(quotes.app, "crash", crash)
    async with quotes.process_quotes.test_context() as agent:
        body = {"symbol": "AAPL", "ts": T0, "price": 10.0, "volume": 1}
        first = await put(agent, body)
        await asyncio.wait_for(stored.wait(), 5)
        second = await put(agent, {**body, "ts": T0 + 1000})
        for _ in range(100):
            if crashed:
                break
            await asyncio.sleep(0.02)
        third = await put(agent, {**body, "ts": T0 + 2000})
        await asyncio.sleep(0.2)  # time for an agent Faust started again to take it
        assert [type(e) for e in crashed] == [RuntimeError]
        assert len(submitted) == 2 and not third.message.acked  # not started again
        assert proc.checkpoint.idle and not proc.checkpoint.unstored
    assert (first.message.acked, second.message.acked) == (False, False)


async def test_a_stored_batch_is_acked(processor, delivery):
    proc, _ = processor
    async with quotes.process_quotes.test_context() as agent:
        body = {"symbol": "AAPL", "ts": T0, "price": 10.0, "volume": 1}
        events = [await put(agent, body) for _ in range(3)]
        for _ in range(100):
            if all(e.message.acked for e in events):
                break
            await asyncio.sleep(0.05)
    assert proc.stats["quotes"] == 3
    assert [e.message.acked for e in events] == [True, True, True]


async def test_records_the_processor_left_out_are_not_acked(processor, monkeypatch, delivery):
    """Records fetched before a rebalance are left out by the processor; acking them would let
    the next commit pass records that were never applied."""
    proc, _ = processor
    real = proc.submit_until_applied

    async def first_only(records, drained, acker, size):
        pending = await real(records, drained, acker, size)
        pending.applied = records[:1]  # as if the others were of an earlier generation
        return pending

    monkeypatch.setattr(proc, "submit_until_applied", first_only)
    async with quotes.process_quotes.test_context() as agent:
        body = {"symbol": "AAPL", "ts": T0, "price": 10.0, "volume": 1}
        events = [await put(agent, body) for _ in range(3)]
        for _ in range(100):
            if events[0].message.acked:
                break
            await asyncio.sleep(0.05)
    assert [e.message.acked for e in events] == [True, False, False]


async def test_a_revocation_waits_for_the_batch_then_flushes_the_changelog(processor, monkeypatch):
    """The batch in flight writes its states after Faust's own flush on revocation: the handler
    waits for it, then flushes again, before the new assignment's recovery reads the changelog."""
    proc, _ = processor
    order: list[str] = []

    async def changelog_sent() -> None:
        order.append("flush")

    monkeypatch.setattr(proc.checkpoint, "durable", changelog_sent)
    await proc.lock.acquire()  # a batch in flight
    revoking = asyncio.ensure_future(quotes.on_revoked(quotes.app, set()))
    await asyncio.sleep(0.05)
    assert order == [] and not revoking.done()
    order.append("batch stored")
    proc.lock.release()
    await asyncio.wait_for(revoking, 5)
    assert order == ["batch stored", "flush"]
    assert proc.revoked_generation == quotes.app.consumer_generation_id


async def test_the_users_rules_are_loaded_before_the_first_batch_through_failures(monkeypatch):
    """A failed read of the stored rules is tried again before the processor starts; only the
    last failure stops the worker."""
    from stockapp.agents import rules
    from stockapp.tables.signals import parse_rule
    from stockapp.tables.signals.book import RuleBook

    spec = parse_rule({"name": "x", "kind": "breakout_up", "lookback": 2, "interval": "1m"}, ["1m"])
    answers: list = [OSError("down"), TimeoutError(), [spec]]
    slept: list[float] = []

    async def load():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(rules.app, "rule_book", RuleBook())
    monkeypatch.setattr(rules.app.rule_store, "load", load)
    await rules.load_rules(sleep=sleep)
    assert rules.app.rule_book.user == (spec,) and slept == [0.5, 1.0]

    answers[:] = [OSError("down")] * 3
    with pytest.raises(OSError):
        await rules.load_rules(tries=3, sleep=sleep)


async def test_the_end_offsets_client_starts_before_the_first_question_and_after_a_failure():
    """The worker starts it with the processor, so the tick that closes the first live candles
    does not wait for a connection; a start that failed is retried by the next question."""

    class Consumer:
        async def end_offsets(self, tps):
            return {tp: 7 for tp in tps}

    starts: list[str] = []

    async def start():
        starts.append("try")
        if len(starts) == 1:
            raise ConnectionError("no broker yet")
        return Consumer()

    client = quotes.EndOffsets()
    client._start = start
    first = client.start_soon()
    assert client.start_soon() is first  # one start at a time
    await asyncio.sleep(0)
    assert first.done() and isinstance(first.exception(), ConnectionError)
    tp = quotes.TP("quotes", 3)
    assert await client.get([tp]) == {tp: 7}
    assert starts == ["try", "try"]
    assert client.start_soon() is client.started and starts == ["try", "try"]  # not again


async def test_a_closed_end_offsets_client_waits_for_a_start_in_flight_and_starts_no_other():
    stopped: list[bool] = []

    async def start():
        try:
            await asyncio.sleep(10)  # a broker slow to answer
        except asyncio.CancelledError:
            stopped.append(True)  # as _start stops its client when cut short
            raise

    client = quotes.EndOffsets()
    client._start = start
    client.start_soon()
    await asyncio.sleep(0)
    await client.close()
    assert stopped == [True]
    with pytest.raises(RuntimeError, match="closed"):
        await client.get([quotes.TP("quotes", 0)])
