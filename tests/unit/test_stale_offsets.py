"""A committed offset past a partition's end (the topic was deleted and created again while
Kafka kept the group's offsets) must not make Faust drop the new topic's records: the
consumer seeks such partitions to their start."""

from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from stockapp.faust_compat import StaleOffsetSafeConsumer

RECREATED, LIVE, NEW = TP("q", 4), TP("q", 1), TP("q", 2)


async def test_offsets_past_the_end_are_sought_to_the_start(monkeypatch):
    async def faust_seek(self) -> None:  # Faust's own: read offsets = committed offsets
        self._read_offset = dict(self._committed_offset)

    monkeypatch.setattr(FaustConsumer, "perform_seek", faust_seek)
    consumer = StaleOffsetSafeConsumer.__new__(StaleOffsetSafeConsumer)
    consumer._committed_offset = {RECREATED: 50, LIVE: 10, NEW: None}
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
    assert consumer._read_offset[RECREATED] is None and consumer._read_offset[LIVE] == 10
