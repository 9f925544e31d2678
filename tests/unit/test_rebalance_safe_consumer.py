"""RebalanceSafeConsumer: no ack of a record from before a rebalance reaches a commit, and a
committed offset past a partition's end (the topic was deleted and created again while Kafka
kept the group's offsets) does not make Faust drop the new topic's records."""

import asyncio
from types import SimpleNamespace

from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from stockapp.faust_compat import RebalanceSafeConsumer, _UnsetReadOffsets

RECREATED, LIVE, NEW = TP("q", 4), TP("q", 1), TP("q", 2)
CHANGELOG = TP("q-changelog", 2)


class FlowControl:
    """The app's flow control, as far as the consumer uses it: suspended, and its stream
    queues cleared, in the order it happened."""

    def __init__(self, events: list) -> None:
        self.events = events

    def suspend(self) -> None:
        self.events.append("suspend")

    def clear(self) -> None:
        self.events.append("clear")

    def is_active(self) -> bool:
        return True


def faust_app(reset: str = "earliest", events: list | None = None) -> SimpleNamespace:
    """What the consumer reads of its app: the offset reset, which topics are acked (the
    agents' topics, not the changelogs), and the flow control."""
    return SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset=reset),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == "q"),
        flow_control=FlowControl([] if events is None else events),
    )


def bare_consumer(app: SimpleNamespace) -> RebalanceSafeConsumer:
    """A RebalanceSafeConsumer without a Kafka connection (``__init__`` skipped)."""
    consumer = RebalanceSafeConsumer.__new__(RebalanceSafeConsumer)
    consumer.app = app
    consumer._fetches = 0
    consumer._no_fetch = asyncio.Event()
    consumer._no_fetch.set()
    consumer.stop_flow = lambda: app.flow_control.events.append("stop_flow")
    consumer._acked, consumer._acked_index, consumer._gap = {}, {}, {}
    return consumer


async def test_offsets_past_the_end_are_sought_to_the_start(monkeypatch):
    async def faust_seek(self) -> None:  # Faust's own: read offsets = committed offsets
        self._read_offset = dict(self._committed_offset)

    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = bare_consumer(faust_app())
    consumer._committed_offset = {RECREATED: 50, LIVE: 10}
    sought: list = []

    async def highwaters(*tps):
        return {RECREATED: 30, LIVE: 10, NEW: 5}

    async def earliest_offsets(*tps):
        return {tp: 0 for tp in tps}

    async def seek(tp, offset):
        sought.append((tp, offset))
        consumer._read_offset[tp] = offset or None

    consumer.assignment = lambda: {RECREATED, LIVE}
    consumer.highwaters, consumer.earliest_offsets, consumer.seek = (
        highwaters,
        earliest_offsets,
        seek,
    )
    await consumer.perform_seek()
    assert sought == [(RECREATED, 0)]
    assert consumer._committed_offset == {RECREATED: None, LIVE: 10}


async def test_partitions_without_a_committed_offset_are_sought_to_their_start(monkeypatch):
    """aiokafka's seek to the committed offsets leaves a partition with none where the
    fetcher got to, past records Faust fetched and dropped during the rebalance: a handover
    before the first commit lost every record the first owner had fetched."""

    async def faust_seek(self) -> None:
        pass

    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = bare_consumer(faust_app())
    consumer._committed_offset = {LIVE: 10, NEW: 0}  # 0: as Faust stores "none"
    sought: list = []

    async def earliest_offsets(*tps):
        return {tp: 3 for tp in tps}  # the log starts at 3 (retention)

    async def seek(tp, offset):
        sought.append((tp, offset))

    async def highwaters(*tps):
        return {tp: 100 for tp in tps}

    consumer.assignment = lambda: {LIVE, NEW, RECREATED, CHANGELOG}
    consumer.earliest_offsets, consumer.seek, consumer.highwaters = (
        earliest_offsets,
        seek,
        highwaters,
    )
    await consumer.perform_seek()
    # The changelog is the recovery's to position; LIVE has a committed offset.
    assert sorted(sought) == [(NEW, 3), (RECREATED, 3)]

    sought.clear()
    consumer.app.conf.consumer_auto_offset_reset = "latest"  # the start re-reads what it skips
    await consumer.perform_seek()
    assert sought == []


def test_records_of_an_earlier_generation_are_never_acked(monkeypatch):
    """Faust's stream acks the records it skips after a rebalance; those acks would let a
    later commit pass records nobody processed."""
    acked = []
    monkeypatch.setattr(FaustConsumer, "ack", lambda self, message: acked.append(message) or True)
    consumer = RebalanceSafeConsumer.__new__(RebalanceSafeConsumer)
    flowing = [True]
    flow = SimpleNamespace(is_active=lambda: flowing[0])
    consumer.app = SimpleNamespace(consumer_generation_id=5, flow_control=flow)
    old, current = SimpleNamespace(generation_id=4), SimpleNamespace(generation_id=5)
    assert consumer.ack(old) is False
    assert consumer.ack(current) is True
    flowing[0] = False  # a rebalance under way: Faust skips records and would ack them
    assert consumer.ack(SimpleNamespace(generation_id=5)) is False
    assert acked == [current]


async def test_the_seek_after_a_rebalance_forgets_acks_from_before_it(monkeypatch):
    async def faust_seek(self) -> None:
        pass

    async def highwaters(*tps):
        return {}

    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = bare_consumer(faust_app())
    consumer._committed_offset = {LIVE: 700}
    # Acks recorded while the partition was revoked (Faust's skipped records).
    consumer._acked = {LIVE: [719, 720, 721]}
    consumer._acked_index = {LIVE: {719, 720, 721}}
    consumer._gap = {LIVE: object()}
    consumer.assignment = lambda: {LIVE}
    consumer.highwaters = highwaters
    await consumer.perform_seek()
    assert LIVE not in consumer._acked and LIVE not in consumer._acked_index
    assert LIVE not in consumer._gap


def test_no_record_is_dropped_as_already_read():
    """Faust drops fetched records below a partition's read offset, and moves that offset
    while a rebalance suspends delivery: the offsets are never set."""
    offsets = _UnsetReadOffsets()
    offsets[LIVE] = 1141
    offsets.update({LIVE: 932})
    assert offsets[LIVE] is None and offsets.get(LIVE) is None
    assert offsets.pop(LIVE, None) is None and list(offsets.keys()) == []


async def test_the_seek_waits_for_the_fetch_in_flight_and_delivery_stops_first(monkeypatch):
    """Faust seeks while records are still delivered and clears the streams' queues only
    later: records fetched from the new positions in between were dropped for good. The
    seek stops delivery, waits for the fetch in flight, and the queues are cleared after
    it, so each record they drop was fetched before the seek."""
    events: list = []
    fetch_released = asyncio.Event()

    async def faust_getmany(self, active_partitions, timeout):
        events.append("fetch starts")
        await fetch_released.wait()
        events.append("fetch returns")
        return {}

    async def faust_seek(self) -> None:
        events.append("seek")

    monkeypatch.setattr(FaustConsumer, "_getmany", faust_getmany)
    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = bare_consumer(faust_app(events=events))
    consumer._committed_offset = {LIVE: 10}
    consumer.assignment = lambda: {LIVE}

    async def highwaters(*tps):
        return {LIVE: 100}

    consumer.highwaters = highwaters
    fetch = asyncio.ensure_future(consumer._getmany({LIVE}, 1.0))
    await asyncio.sleep(0)
    seek = asyncio.ensure_future(consumer.perform_seek())
    await asyncio.sleep(0.05)
    assert "seek" not in events  # the fetch in flight could still move the positions
    fetch_released.set()
    await asyncio.gather(fetch, seek)
    assert events == [
        "fetch starts",
        "stop_flow",
        "suspend",
        "fetch returns",
        "seek",
        "clear",
    ]
