"""Every use of Faust's private internals, in one place.

Checked against the versions in :data:`TESTED_VERSIONS` (pinned in setup.cfg). When Faust or
aiokafka is upgraded, this is the module to re-read against their source; nothing else in
stockapp touches an underscore name of theirs (tests/unit/test_faust_private_access.py).
``stockapp worker`` refuses other versions (:func:`check_versions`); docs/operations.md,
"Upgrading Faust or aiokafka", says how to move to new ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from importlib import metadata
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

import faust
from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from stockapp.errors import StockappError
from stockapp.partitioning import partition_for
from stockapp.timeouts import within

ROCKSDB_SCHEME = "keyrocksdb"

log = logging.getLogger(__name__)

# The versions this module was read against. Its patches lean on private code that may change
# in any release, so the worker refuses to run on others unless told to; setup.cfg pins the
# same versions (a unit test keeps the two equal).
TESTED_VERSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
)
ALLOW_UNTESTED_VARIABLE = "STOCKAPP_ALLOW_UNTESTED_FAUST"


_T = TypeVar("_T")
_relied_on: list[str] = []


def relies_on(*names: str) -> Callable[[_T], _T]:
    """Declares the upstream names (``module.Class.attribute``) the decorated patch overrides
    or reads, beside it, so that none can be added unnoticed: the contract test records each
    one's source (tests/fixtures/faust_contract.json) and fails when an upgrade changes it, or
    when this module overrides or reads a private name no declaration lists."""
    _relied_on.extend(name for name in names if name not in _relied_on)
    return lambda patch: patch


class UntestedFaustVersion(StockappError):
    """Faust or aiokafka is installed at a version this module was not checked against."""


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def untested_versions() -> dict[str, str | None]:
    """Each distribution of :data:`TESTED_VERSIONS` installed at another version (None: not
    installed at all), with that version."""
    found = {name: installed_version(name) for name in TESTED_VERSIONS}
    return {name: version for name, version in found.items() if version != TESTED_VERSIONS[name]}


def check_versions(allow_untested: bool) -> str | None:
    """None when Faust and aiokafka are at the tested versions. Otherwise raises
    :class:`UntestedFaustVersion`, in one line, or, when ``allow_untested``
    (``STOCKAPP_ALLOW_UNTESTED_FAUST``), returns the warning for the worker to log.

    A changed private method fails in ways no start-up check sees (a record skipped during a
    rebalance, a commit past unprocessed records), so the default is to stop; running anyway
    is the operator's call, repeated in the log at every start so it is not forgotten."""
    untested = untested_versions()
    if not untested:
        return None
    found = [
        f"{name} {version or '(not installed)'} (tested: {TESTED_VERSIONS[name]})"
        for name, version in untested.items()
    ]
    if len(found) == 1:
        what = f"{found[0]} is not a version"
    else:
        what = f"{' and '.join(found)} are not versions"
    problem = f"{what} stockapp was checked against"
    if allow_untested:
        return (
            f"{problem}; running anyway because {ALLOW_UNTESTED_VARIABLE} is set: "
            'stockapp/faust_compat.py may no longer match them (docs/operations.md, "Upgrading '
            'Faust or aiokafka")'
        )
    raise UntestedFaustVersion(f"{problem}; set {ALLOW_UNTESTED_VARIABLE}=1 to run anyway")


@relies_on(
    "faust.stores.rocksdb.Store._set",
    "faust.stores.rocksdb.Store._key_index",
    "faust.stores.rocksdb.Store._db_for_partition",
)
class KeyPartitionedRocksDBStore(RocksDBStore):
    """A RocksDB table store that files each key under the key's own partition.

    Faust's RocksDB store puts a written key into the database of the partition of the event
    being processed, and asserts that there is one. A table written with
    ``use_partitioner=True`` (the symbol-state table, written once per batch and from a timer)
    has no such event, or one from another partition: keys would land in the wrong partition's
    database and, after a rebalance, stale copies would shadow recovered ones. Reads already
    search every partition for such tables; only writes need the key's partition, which is the
    one the producer's partitioner (murmur2, as Kafka's Java client) chose for the changelog
    record. Overrides the private ``_set`` and uses ``_key_index`` / ``_db_for_partition``.
    """

    def _set(self, key: bytes, value: bytes | None) -> None:
        partitions = self.table.partitions
        assert partitions is not None  # declared with the quotes topic's count
        partition = partition_for(key, partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


STORES.aliases[ROCKSDB_SCHEME] = f"{__name__}:KeyPartitionedRocksDBStore"


@relies_on("faust.stores.rocksdb.RocksDBOptions.__init__")
def rocksdb_options(megabytes: int) -> dict[str, int]:
    """Faust's RocksDB options (``RocksDBOptions`` fields) for a database of at most about
    ``megabytes`` of memory: half block cache, half two write buffers."""
    mib = 1024 * 1024
    return {
        "write_buffer_size": max(1, megabytes // 4) * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": max(1, megabytes // 2) * mib,
        "block_cache_compressed_size": max(1, megabytes // 8) * mib,
    }


@relies_on("faust.transport.drivers.aiokafka.Consumer._committed_offset")
def committed_offset(app: Any, tp: TP) -> int | None:
    """The committed offset the consumer sought to at start (or last committed) for ``tp``.

    Faust keeps it in the private ``Consumer._committed_offset``; there is no public reader.
    """
    return app.consumer._committed_offset.get(tp)


@relies_on("faust.sensors.monitor.Monitor.stream_inbound_time")
def mark_stream_inbound(app: Any, tps: set[TP], now: float) -> None:
    """Tells Faust's monitor that the agent's stream took records of ``tps`` at ``now``
    (``time.monotonic``), as its stream's ``on_stream_event_in`` does per event. The
    consumer's stall check (``verify_event_path``, every few seconds) reads this time: a
    partition with records waiting and none taken for ``stream_processing_timeout`` is logged
    as a stalled stream, so a delivery that bypasses the stream must keep it current."""
    inbound = app.monitor.stream_inbound_time
    for tp in tps:
        inbound[tp] = now


@relies_on("faust.transport.drivers.aiokafka.Producer._ensure_producer")
def producer_client(app: Any) -> Any:
    """The aiokafka client under the app's producer (``Producer._ensure_producer``), for a
    metadata round trip in the readiness check."""
    return app.producer._ensure_producer().client


@relies_on("faust.transport.drivers.aiokafka.Consumer._read_offset")
class _UnsetReadOffsets(dict):
    """Faust's per-partition read offsets (``Consumer._read_offset``), never set: every
    lookup says "no read offset", so Faust never drops a fetched record as one it has read.

    Faust drops each fetched record below the partition's read offset, which it moves with
    every record its fetch loop hands on. During a rebalance that loop runs on through the
    records of its current fetch without delivering them (the flow is suspended) while still
    moving the read offset, after the revoked partitions' offsets were cleared; when the
    partition is assigned again, the records fetched anew below that offset are dropped
    (docs/operations.md, "Problems seen and fixed"). Records fetched twice reach the
    processor, whose replay guard skips them; the quotes topic's offsets have no holes (no
    compaction, no transactions), so Faust's gap bookkeeping, which reads these offsets, has
    nothing to do.
    """

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Route(NamedTuple):
    """A partition's records queued as fetched: the channel's queue, and what the
    conductor's delivery calls when it fills and drains."""

    queue: Any
    pressure_high: Callable[[], None]
    pressure_drop: Callable[[], None]


# How long a seek waits for the fetch in flight to return (Faust fetches with a 1 s timeout).
QUIESCE_TIMEOUT_SECONDS = 10.0
# The fetch loop lets other tasks run after this many records handed on without a pause (as
# Faust's loop does), so that a large fetch does not hold the web views up.
YIELD_EVERY_RECORDS = 100


@relies_on(
    "faust.transport.drivers.aiokafka.Consumer.__init__",
    "faust.transport.drivers.aiokafka.Consumer._read_offset",
    "faust.transport.drivers.aiokafka.Consumer.ack",
    "faust.transport.drivers.aiokafka.Consumer._getmany",
    "faust.transport.drivers.aiokafka.Consumer.perform_seek",
    "faust.transport.drivers.aiokafka.Consumer._acked",
    "faust.transport.drivers.aiokafka.Consumer._acked_index",
    "faust.transport.drivers.aiokafka.Consumer._gap",
    "faust.transport.drivers.aiokafka.Consumer._committed_offset",
    "faust.transport.drivers.aiokafka.Consumer._drain_messages",
    "faust.transport.drivers.aiokafka.Consumer._commit_every",
    "faust.transport.drivers.aiokafka.Consumer._n_acked",
    "faust.transport.conductor.Conductor._tp_to_callback_lock",
    "faust.transport.conductor.Conductor._tp_index",
    "faust.transport.conductor.ConductorCompiler.build",
    "faust.serializers.schemas.Schema.loads_key",
    "faust.serializers.schemas.Schema.loads_value",
)
class RebalanceSafeConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer, minus the ways it found to commit or skip records that
    were never processed (each was seen in a rebalance test: docs/operations.md, "Problems
    seen and fixed").

    0. No fetched record is dropped as already read (see :class:`_UnsetReadOffsets`).

    1. Faust's stream skips records fetched before a rebalance (their generation is old, or
       the flow is suspended) and *acks* them, "otherwise the lag would increase". A commit
       during the rebalance then passes them (Kafka accepts the current generation's commits
       while the group prepares to rebalance), or the acks outlive the rebalance in the
       consumer's per-partition lists (it clears them when the partitions are revoked,
       before the skipping happens) and a later commit passes them. Here nothing is acked
       while the flow is suspended or for a record of an earlier generation, and the lists
       of every assigned partition are cleared when the consumer seeks to the committed
       offsets, before the new generation's first record (private ``_acked``,
       ``_acked_index``, ``_gap``).
    2. aiokafka seeks only partitions that have a committed offset; the others stay where
       the fetcher got to, past records Faust dropped. They are sought to their start (see
       :meth:`_seek_uncommitted_to_start`).
    3. Faust records the committed offset it seeks to as the partition's read offset and
       drops every fetched record below it (``Consumer._drain_messages``). A committed offset
       beyond the partition's end belongs to an earlier life of the topic: Kafka keeps a
       group's offsets for a while after the topic is deleted (seconds on a loaded 4.1
       broker; until the group expires on others), so a topic deleted and created again is
       read from the start by Kafka's offset reset, and each of its records is dropped by
       Faust until the new topic outgrows the old offset. Such partitions are sought to their
       start, with the read and committed offsets cleared (private ``_committed_offset``).
    4. Faust seeks to the committed offsets after a rebalance while records are still
       delivered: it resumes the partitions, with the flow already running for the standby
       tables, before the seek, and clears the streams' queues only when it resumes the
       flow after it. Records fetched from the new positions between the seek and that
       clearing were dropped, and nothing fetched them again. The seek here first stops
       delivery and waits for the fetch in flight (private ``_getmany``), so each record
       queued when the queues are cleared was fetched before the seek, which fetches it
       again.
    5. Faust's fetch loop hands each record on inside ``wait_first``, which costs four tasks
       per record; here a record that nothing can hold up is handed on directly (see
       :meth:`_drain_messages`), and a record of a topic read as bytes is queued as its event
       without the conductor's decoding (see :meth:`_queue_as_fetched`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = _UnsetReadOffsets()
        self._fetches = 0  # fetches in flight (see _quiesce)
        self._no_fetch = asyncio.Event()
        self._no_fetch.set()
        # By partition: the conductor's channel set it was worked out from, and the route.
        self._routes: dict[TP, tuple[Any, _Route | None]] = {}

    def ack(self, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        if not self.app.flow_control.is_active() or (
            generation is not None and generation != self.app.consumer_generation_id
        ):
            # A rebalance is under way, or the record was fetched before one: Faust's stream
            # skips such records and acks them, and a commit during the rebalance (Kafka
            # accepts them until the group moves on) would pass them unprocessed. Whatever
            # is not acked here is read again from the committed offset by the worker that
            # owns its partition next; the replay guard skips what was stored.
            return False
        return bool(super().ack(message))

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        # Counted so that a seek can wait for the fetch in flight (see perform_seek).
        self._fetches += 1
        self._no_fetch.clear()
        try:
            return await super()._getmany(active_partitions, timeout)
        finally:
            self._fetches -= 1
            if not self._fetches:
                self._no_fetch.set()

    def _nothing_held_up(self) -> bool:
        """With :meth:`_room_for`, whether the conductor would queue a record without
        waiting: the flow runs, its subscription lock is free and the producer's buffer is
        within its limit (``Producer.wait_until_ebb``). Only other tasks change these, so
        the fetch loop asks again only after it let others run."""
        app = self.app
        if self.should_stop or self.suspend_flow.is_set() or not app.flow_control.is_active():
            return False
        conductor: Any = app.topics  # the Conductor: its private lock and index
        if conductor._tp_to_callback_lock.locked():
            return False
        buffer = app.producer.buffer
        return bool(buffer.size <= buffer.max_messages)

    def _room_for(self, tp: TP) -> bool:
        """No queue of a channel reading ``tp`` is full (the loop's own puts fill them)."""
        conductor: Any = self.app.topics
        return not any(channel.queue.full() for channel in conductor._tp_index.get(tp, ()))

    def _direct_route(self, tp: TP) -> _Route | None:
        """Where a record of ``tp`` may be queued as fetched: the one channel reading ``tp``,
        when it takes keys and values as the bytes fetched (bytes types, raw codecs: the
        quotes topic); None otherwise. Known per partition until the conductor's index of it
        changes (a rebalance builds new sets)."""
        conductor: Any = self.app.topics  # the Conductor: its private index
        channels = conductor._tp_index.get(tp)
        known = self._routes.get(tp)
        if known is not None and known[0] is channels and channels and len(channels) == 1:
            return known[1]
        route = None
        if channels and len(channels) == 1:
            (channel,) = channels
            schema = channel.schema
            if (
                type(schema) is faust.Schema
                and schema.key_type is bytes
                and schema.value_type is bytes
                and schema.key_serializer == "raw"
                and schema.value_serializer == "raw"
            ):
                route = _Route(channel.queue, *self._pressure_callbacks(tp))
        self._routes[tp] = (channels, route)
        return route

    def _queue_as_fetched(self, route: _Route, message: Any) -> None:
        """Queues the record's event where the conductor would put it. Only when
        :meth:`_nothing_held_up` holds and the route's queue is not full: the conductor's
        delivery (``ConductorCompiler.build``) then waits for nothing, and its decoding
        (``Schema.loads_key``, ``Schema.loads_value``, the raw codec) returns the bytes as
        they are, at some 10 us a record in codec lookups (docs/performance.md)."""
        message.incref(1)
        event = self.app.create_event(message.key, message.value, message.headers, message)
        route.queue.put_nowait_enhanced(
            event, on_pressure_high=route.pressure_high, on_pressure_drop=route.pressure_drop
        )

    def _pressure_callbacks(self, tp: TP) -> tuple[Callable[[], None], Callable[[], None]]:
        """What the conductor's delivery tells when a channel's queue fills and drains: the
        fetcher stops taking ``tp`` when it is under pressure, and takes it again after."""
        on_topic_buffer_full = self.app.sensors.on_topic_buffer_full
        # Faust's TP, as the conductor's handler has it: the fetch hands aiokafka's
        # TopicPartition, which compares equal but which Faust's partition sets refuse.
        tp = TP(tp.topic, tp.partition)

        def high() -> None:
            on_topic_buffer_full(tp)
            self.on_buffer_full(tp)

        def drop() -> None:
            self.on_buffer_drop(tp)

        return high, drop

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (``Consumer._drain_messages``), without its per-record tasks
        where they change nothing.

        Faust awaits each record's delivery inside ``wait_first(deliver, suspend_flow)`` (four
        tasks and an ``asyncio.wait``, some 25 us a record here, about a third of its no-op
        agent's time: docs/performance.md), so that a rebalance stopping the flow abandons a
        delivery that waits. The conductor waits only for the conditions
        :meth:`_nothing_held_up` and :meth:`_room_for` check; when none holds, the delivery
        completes without waiting, and a plain await of it is the same, without the tasks.
        Otherwise the record goes through ``wait_first`` as in Faust. Those of the conditions
        that only other tasks change are asked again only after the loop let them run.

        Faust's read-offset and gap bookkeeping is left out: this consumer never sets a read
        offset (see 0. above), and without one Faust's loop skips both.
        """
        deliver = self.callback
        app = self.app
        since_pause = 0
        try:
            while not (self.should_stop or fetcher.should_stop):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                # getmany may return without pausing; Faust's loop pauses here too.
                await self.sleep(0)
                if self.should_stop:
                    break
                # Whether anything may hold a record up, as of the last time this loop let
                # other tasks run (getmany yields a fetch's records without awaiting).
                clear: bool | None = None
                async for tp, message in fetched:
                    since_pause += 1
                    if since_pause > YIELD_EVERY_RECORDS:
                        since_pause = 0
                        await asyncio.sleep(0)
                        clear = None
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                        clear = None
                    if clear is None:
                        clear = self._nothing_held_up()
                    route = self._direct_route(tp) if clear else None
                    if route is not None and not route.queue.full():
                        self._queue_as_fetched(route, message)
                    elif clear and self._room_for(tp):
                        await deliver(message)
                        clear = None
                    else:
                        await self.wait_first(deliver(message), self.suspend_flow.wait())
                        clear = None
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if app.should_stop:
                log.info("the broker stopped the consumer while the worker stops")
                return
            raise
        except asyncio.CancelledError:
            if app.should_stop:
                return
            raise
        except Exception:
            log.exception("the fetch loop failed")
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _quiesce(self) -> None:
        """Stop delivery, and wait for the fetch in flight, before a seek (see 4. above)."""
        self.stop_flow()
        self.app.flow_control.suspend()
        try:
            await within(QUIESCE_TIMEOUT_SECONDS, self._no_fetch.wait())
        except TimeoutError:
            log.warning(
                "a fetch was still in flight %.0f s after the flow stopped; seeking anyway",
                QUIESCE_TIMEOUT_SECONDS,
            )

    async def perform_seek(self) -> None:
        await self._quiesce()
        try:
            await self._seek_committed()
        finally:
            # Records queued for the streams were fetched before the seek, which fetches
            # them again; Faust clears the queues when it resumes the flow, after this.
            self.app.flow_control.clear()

    async def _seek_committed(self) -> None:
        for tp in self.assignment():  # acks from before the rebalance (see 1. above)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
        await super().perform_seek()
        await self._seek_uncommitted_to_start()
        committed = {
            tp: offset
            for tp, offset in self._committed_offset.items()
            if offset and tp in self.assignment()
        }
        if not committed:
            return
        try:
            ends = await self.highwaters(*committed)
        except Exception:  # a check on top of Faust's seek must not fail it
            log.warning("could not read the partitions' ends after seeking", exc_info=True)
            return
        stale = [tp for tp, offset in committed.items() if ends.get(tp, offset) < offset]
        if not stale:
            return
        starts = await self.earliest_offsets(*stale)
        for tp in stale:
            log.warning(
                "%s[%d]: the committed offset %d is past the partition's end %d (the topic was "
                "recreated?); reading it from its start, %d",
                tp.topic,
                tp.partition,
                committed[tp],
                ends[tp],
                starts[tp],
            )
            self._committed_offset[tp] = None
            await self.seek(tp, starts[tp])

    async def _seek_uncommitted_to_start(self) -> None:
        """Seek the stream partitions that have no committed offset to their start.

        aiokafka's ``seek_to_committed`` leaves a partition whose committed offset is none
        (or 0) where its fetcher got to: records fetched and then dropped by Faust while a
        rebalance suspended the flow are then never fetched again (a partition handed over
        before its first commit would lose every record its first owner had fetched). The
        start is what Kafka's offset reset gives such a partition (``earliest``); records
        fetched twice meet the replay guard. Only the agents' topics (acks enabled), not the
        changelogs, which the table recovery positions itself."""
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return
        acks_enabled_for = self.app.topics.acks_enabled_for
        uncommitted = [
            tp
            for tp in self.assignment()
            if acks_enabled_for(tp.topic) and not self._committed_offset.get(tp)
        ]
        if not uncommitted:
            return
        starts = await self.earliest_offsets(*uncommitted)
        for tp in uncommitted:
            await self.seek(tp, starts[tp])


@relies_on("faust.app.base.App._new_transport")
class SafeSeekApp(faust.App):
    """A Faust app whose consumer is :class:`RebalanceSafeConsumer` (overrides the private
    ``_new_transport``)."""

    def _new_transport(self) -> Any:
        transport: Any = super()._new_transport()
        transport.Consumer = RebalanceSafeConsumer
        return transport


# A record's key, headers and batch framing beside its value.
RECORD_FRAMING_BYTES = 1024


class ChangelogRecordTooLarge(StockappError):
    """A table value too large for its changelog: not written, nothing stored."""


@relies_on("faust.tables.table.Table.__init__", "faust.tables.table.Table.send_changelog")
class DurableTable(faust.Table):
    """A Faust table whose writer can wait until its changelog records are in Kafka.

    Faust sends a table write's changelog record through its producer buffer
    (``send_soon``) and relies on flushing that buffer before each offset commit. But the
    buffer's flush (``ProducerBuffer.flush_atmost``) gives up once nothing has been sent for
    0.1 s, pending records or not: on a busy loop an offset can be committed while the state
    that covers it is still in the buffer, and a worker that takes the partition over then
    recovers an older state and skips the records in between. Overrides ``send_changelog``
    to keep each record's future until :meth:`changelog_sent` has awaited it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: list[asyncio.Future] = []

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # A record over the producer's request limit fails inside the producer buffer's own
        # task, and that failure ends the worker: refuse it here instead, before the store is
        # written (Faust sends the changelog record first), so the caller's retry or
        # dead letter applies. The processor holds states far below this (its budget).
        limit = self.app.conf.producer_max_request_size - RECORD_FRAMING_BYTES
        if isinstance(value, bytes | bytearray) and len(value) > limit:
            raise ChangelogRecordTooLarge(
                f"a {self.name} value of {len(value)} bytes is over the producer's limit "
                f"({limit} bytes)"
            )
        future = super().send_changelog(partition, key, value, *args, **kwargs)
        self._unsent.append(future)
        return future

    async def changelog_sent(self) -> None:
        """Returns once every changelog record written so far is acknowledged by Kafka."""
        while self._unsent:
            futures, self._unsent = self._unsent, []
            await asyncio.gather(*futures)


@relies_on("faust.app.base.App.Table")
def durable_table(app: Any, name: str, **kwargs: Any) -> DurableTable:
    """``app.Table(name, **kwargs)``, as a :class:`DurableTable` (reads ``app.tables.beacon``
    as ``App.Table`` does)."""
    table = DurableTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    return app.tables.add(table)


@relies_on(
    "faust.transport.drivers.aiokafka.Consumer._active_partitions",
    "faust.transport.drivers.aiokafka.Consumer._paused_partitions",
    "faust.transport.drivers.aiokafka.Consumer._buffered_partitions",
    "faust.transport.drivers.aiokafka.Consumer._thread",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer",
)
def consumer_state(app: Any) -> dict[str, Any]:
    """Which partitions the consumer fetches, and why not the others: Faust's active, paused
    and buffered (its stream queue full) partitions, and aiokafka's paused ones (private
    ``_active_partitions``, ``_paused_partitions``, ``_buffered_partitions``)."""
    consumer = app.consumer

    def names(tps: Any) -> list[str]:
        return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps or ())

    state: dict[str, Any] = {
        "assigned": names(consumer.assignment()),
        "active": names(consumer._active_partitions),
        "paused": names(consumer._paused_partitions),
        "buffered": names(consumer._buffered_partitions),
        "flow_active": consumer.flow_active,
        "flow_control_active": app.flow_control.is_active(),
    }
    try:
        state["aiokafka_paused"] = names(consumer._thread._ensure_consumer().paused())
    except Exception as exc:  # noqa: BLE001 - a diagnostic: report, never fail
        state["aiokafka_paused"] = repr(exc)
    try:
        state["aiokafka"] = _aiokafka_state(consumer._thread)
    except Exception as exc:  # noqa: BLE001 - a diagnostic: report, never fail
        state["aiokafka"] = repr(exc)
    return state


@relies_on(
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer",
    "aiokafka.consumer.consumer.AIOKafkaConsumer._fetcher",
    "aiokafka.consumer.consumer.AIOKafkaConsumer._subscription",
    "aiokafka.consumer.fetcher.Fetcher._fetch_task",
    "aiokafka.consumer.fetcher.Fetcher._records",
    "aiokafka.consumer.fetcher.Fetcher._in_flight",
    "aiokafka.consumer.fetcher.Fetcher._pending_tasks",
)
def _aiokafka_state(thread: Any) -> dict[str, Any]:
    """aiokafka's own view, read from the consumer thread without locking (a diagnostic: a
    torn read is acceptable): each assigned partition's position, the fetched records it
    holds back per partition, the nodes with a fetch in flight, and the fetch routine."""
    kafka = thread._ensure_consumer()
    fetcher = kafka._fetcher
    assignment = kafka._subscription.subscription.assignment
    partitions = {}
    for tp in sorted(assignment.tps if assignment else ()):
        tp_state = assignment.state_value(tp)
        partitions[f"{tp.topic}[{tp.partition}]"] = {
            "position": tp_state.position if tp_state.has_valid_position else None,
            "paused": tp_state.paused,
            "awaiting_reset": tp_state.awaiting_reset,
        }
    task = fetcher._fetch_task
    return {
        "partitions": partitions,
        "held": {
            f"{tp.topic}[{tp.partition}]": repr(r) for tp, r in list(fetcher._records.items())
        },
        "in_flight": sorted(fetcher._in_flight),
        "pending_tasks": len(fetcher._pending_tasks),
        "fetch_routine": (
            [f"{f.f_code.co_name}:{f.f_lineno}" for f in task.get_stack()]
            if not task.done()
            else repr(task)
        ),
        "thread_tasks": sorted(
            repr(t.get_coro())[:100] for t in list(asyncio.all_tasks(thread.thread_loop))
        ),
    }


# Every upstream name declared above with relies_on, in the order declared.
PATCHED: Final[tuple[str, ...]] = tuple(_relied_on)


def tables_recovered(app: Any) -> bool:
    """Whether the app's tables are recovered from their changelogs since the last start or
    rebalance (``TableManager.recovery``, which Faust's table-manager type does not declare)."""
    return bool(app.tables.recovery.completed.is_set())
