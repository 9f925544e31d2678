"""RebalanceSafeConsumer: no ack of a record from before a rebalance reaches a commit, and a
committed offset past a partition's end (the topic was deleted and created again while Kafka
kept the group's offsets) does not make Faust drop the new topic's records."""

from types import SimpleNamespace

from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from stockapp.faust_compat import RebalanceSafeConsumer, _UnsetReadOffsets

RECREATED, LIVE, NEW = TP("q", 4), TP("q", 1), TP("q", 2)


async def test_offsets_past_the_end_are_sought_to_the_start(monkeypatch):
    async def faust_seek(self) -> None:  # Faust's own: read offsets = committed offsets
        self._read_offset = dict(self._committed_offset)

    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = RebalanceSafeConsumer.__new__(RebalanceSafeConsumer)
    consumer._committed_offset = {RECREATED: 50, LIVE: 10, NEW: None}
    consumer._acked, consumer._acked_index, consumer._gap = {}, {}, {}
    sought: list = []

    async def highwaters(*tps):
        return {RECREATED: 30, LIVE: 10, NEW: 5}

    async def earliest_offsets(*tps):
        assert set(tps) == {RECREATED}
        return {RECREATED: 0}

    async def seek(tp, offset):
        sought.append((tp, offset))
        consumer._read_offset[tp] = offset or None

    consumer.assignment = lambda: {RECREATED, LIVE, NEW}
    consumer.highwaters, consumer.earliest_offsets, consumer.seek = (
        highwaters,
        earliest_offsets,
        seek,
    )
    await consumer.perform_seek()
    assert sought == [(RECREATED, 0)]
    assert consumer._committed_offset == {RECREATED: None, LIVE: 10, NEW: None}


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
    consumer = RebalanceSafeConsumer.__new__(RebalanceSafeConsumer)
    consumer._committed_offset = {}
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
