"""Raw quotes -> candles, indicators, Cassandra, and the late/dead-letter topics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import RecordMetadata, TopicPartition
from faust.agents import current_agent
from faust.types import TP

from stockapp.agents.rules import load_rules
from stockapp.app import app
from stockapp.batching import joined_batches, split_by_size
from stockapp.checkpoint import Durable
from stockapp.credentials import kafka_options
from stockapp.delivery import fetched_batches
from stockapp.faust_compat import committed_offset, tables_recovered
from stockapp.processing import TIMER_RECHECK_SECONDS, QuoteProcessor, RawRecord
from stockapp.settings import get_settings
from stockapp.sinks.cassandra import CassandraSink
from stockapp.sinks.cassandra_session import connect
from stockapp.sinks.seeds import SeedStore
from stockapp.tables.definitions import symbol_state
from stockapp.timeouts import within
from stockapp.topic_identity import topic_id

settings = get_settings()
log = logging.getLogger(__name__)


def _raw_topic(name: str, internal: bool = False) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.quotes_partitions,
        internal=internal,
    )


# internal: the worker declares it (with the partition count the state table relies on).
quotes_topic = _raw_topic(settings.topic_quotes, internal=True)
output_topics = {
    name: _raw_topic(name)
    for name in (
        settings.topic_candles,
        settings.topic_late,
        settings.topic_dlq,
        settings.topic_signals,
    )
}


async def publish(
    topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> Awaitable[RecordMetadata]:
    """Queues the record and returns its delivery (acks=all). The processor awaits the
    deliveries before it writes the symbol state, whose offset guard skips the record on
    replay. ``force`` sends now even if Faust were set to publish on commit."""
    return await output_topics[topic].send(key=key, value=value, headers=headers, force=True)


# A timer tick waits at most this long for end offsets (before it takes the processor's
# lock): a broker that does not answer makes the tick close nothing, never hang.
END_OFFSETS_TIMEOUT_S = 1.0


class EndOffsets:
    """End offsets from a Kafka consumer of its own, which never fetches (no group, nothing
    assigned). The worker's consumer would answer them on the connection its long-polling
    fetch holds, and a connection's requests are served in order (docs/operations.md,
    "Problems seen and fixed")."""

    def __init__(self) -> None:
        self.started: asyncio.Future[AIOKafkaConsumer] | None = None
        self.closed = False  # by the worker's shutdown: nothing starts a client again

    async def _start(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=list(settings.kafka_bootstrap),
            enable_auto_commit=False,
            **kafka_options(settings),
        )
        try:
            await consumer.start()
            await _load_quotes_metadata(consumer)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    def start_soon(self) -> asyncio.Future[AIOKafkaConsumer]:
        """Starts the client in the background, if it is not started or starting: its first
        question would otherwise wait for a connection and the cluster's metadata, and that
        question comes from the timer tick that closes the first live candles. Raises once
        closed (a tick still waiting for the lock during shutdown would start one nobody
        stops)."""
        if self.closed:
            raise RuntimeError("the end offsets client is closed")
        if self.started is None or _failed(self.started):
            self.started = asyncio.ensure_future(self._start())
            # A failed start is seen (and replaced) by the next question; read here, its
            # exception is not reported as never retrieved.
            self.started.add_done_callback(_retrieved)
        return self.started

    async def get(self, tps: list[TP]) -> dict[TP, int]:
        # Shielded: a caller's timeout must not cut the start short (and leak a half-started
        # client); the next caller finds it started.
        consumer = await asyncio.shield(self.start_soon())
        asked = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
        ends = await consumer.end_offsets(list(asked))
        return {asked[tp]: end for tp, end in ends.items() if end is not None}

    async def close(self) -> None:
        self.closed = True
        started, self.started = self.started, None
        if started is None:
            return
        if not started.done():
            # Waited for: a start cut short stops its client itself (``_start``), before the
            # process goes.
            started.cancel()
            await asyncio.gather(started, return_exceptions=True)
        elif not _failed(started):
            await started.result().stop()


async def _load_quotes_metadata(consumer: AIOKafkaConsumer) -> None:
    """Loads the quotes topic's metadata into a new client: its first question about
    partitions it has no leader for would be answered only after a metadata refresh and a
    retry backoff (aiokafka's retry_backoff_ms, 100 ms), and that question comes from the tick
    that closes the first live candles. Not loaded (no topic yet, a slow broker): the
    questions load it themselves."""
    try:
        first = TopicPartition(settings.topic_quotes, 0)
        await within(END_OFFSETS_TIMEOUT_S, consumer.end_offsets([first]))
    except Exception as exc:  # noqa: BLE001 - see above
        log.debug("could not load the quotes topic's metadata: %r", exc)


def _failed(future: asyncio.Future) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("the end offsets client did not start: %r", future.exception())


_end_offsets = EndOffsets()


@app.on_before_shutdown.connect
async def _close_end_offsets(app: Any, /, *args: Any, **kwargs: Any) -> None:
    await _end_offsets.close()


async def end_offsets(tps: list[TP]) -> dict[TP, int]:
    """The partitions' end offsets, fresh from the broker in one request; those it could not
    tell (a timeout, a broker away) are missing."""
    if not tps:
        return {}
    try:
        return await within(END_OFFSETS_TIMEOUT_S, _end_offsets.get(tps))
    except Exception as exc:  # noqa: BLE001 - unknown, which callers read as "not caught up"
        log.debug("could not read the end offsets of %d partitions: %r", len(tps), exc)
        return {}


async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
    """Records of each quotes partition not processed yet; None while that is unknown.

    ``processed``: by partition, the last offset this worker processed there since it started.
    Without one, the committed offset says where processing resumes. (Fetched is not
    processed: after a restart the fetcher fills Faust's buffers long before the agent gets to
    them.) Faust keeps the committed offsets it sought to at start; read as "next offset to
    process", which errs toward reporting a backlog, never toward hiding one.

    The end offsets come from the broker, not from the consumer's last fetch: during a stall
    the stream's buffers fill and the fetcher stops, so the last fetched end can be far behind
    records that arrived on time, and a wall-clock close judged by it would make them late.
    """
    tps = {partition: TP(settings.topic_quotes, partition) for partition in processed}
    ends = await end_offsets(list(tps.values()))
    left: dict[int, int | None] = {}
    for partition, last in processed.items():
        tp = tps[partition]
        end = ends.get(tp)
        start = last + 1 if last is not None else committed_offset(app, tp)
        left[partition] = None if end is None or start is None else end - start
    return left


def more_waiting(events: list[Any]) -> bool:
    """Whether more of the events' quotes partitions already waits in Kafka, by the end
    offsets the consumer last fetched (no request). Unknown, or during a rebalance: no."""
    if app.rebalancing:
        return False
    last: dict[int, int] = {}
    for event in events:
        message = event.message
        last[message.partition] = max(last.get(message.partition, -1), message.offset)
    for partition, offset in last.items():
        try:
            end = app.consumer.highwater(TP(settings.topic_quotes, partition))
        except Exception:  # noqa: BLE001 - no longer assigned: nothing to wait for there
            continue
        if end is not None and end > offset + 1:
            return True
    return False


def owned_partitions() -> set[int]:
    """The quotes partitions assigned to this worker now (the timer runs only between
    rebalances, once tables are recovered, so this is the settled assignment)."""
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_quotes}


class WorkerPort:
    """What the stream tells the processor (stockapp/stream_port.py), from this worker's
    Faust app, its consumer, the broker and Cassandra's backfill seeds."""

    knows_backlog = True

    def __init__(self, seeds: SeedStore) -> None:
        self.seed_store = seeds
        self.durable: Durable | None = symbol_state.changelog_sent

    async def backlog(self, processed: dict[int, int | None]) -> dict[int, int | None]:
        return await backlog(processed)

    async def seeds(self, symbols: list[str]) -> dict[str, dict]:
        return await self.seed_store.load(symbols)

    def owned(self) -> set[int] | None:
        return owned_partitions()

    async def topic_id(self) -> str | None:
        return await topic_id(settings, settings.topic_quotes)

    def generation(self) -> int | None:
        generation: int = app.consumer_generation_id
        return generation


async def start_processor() -> QuoteProcessor:
    if app.processor is None:
        loop = asyncio.get_running_loop()
        _, session = await loop.run_in_executor(
            None, connect, settings, settings.cassandra_keyspace
        )
        # Topics are created by `stockapp worker` before Faust starts (stockapp/topics.py).
        sink = CassandraSink(
            session,
            settings.interval_ms,
            settings.cassandra_concurrency,
            outputs=settings.indicator_outputs,
        )

        port = WorkerPort(SeedStore(session, settings.cassandra_concurrency))
        _end_offsets.start_soon()
        await load_rules()  # the users' rules before the first candle closes
        app.use_processor(
            QuoteProcessor(settings, symbol_state, sink, publish, port=port, rules=app.rule_book)
        )
    processor = app.processor
    assert processor is not None  # set just above
    return processor


@app.agent(quotes_topic)
async def process_quotes(stream: Any) -> None:
    proc = await start_processor()
    # Not take_events: it acks a batch in a ``finally``, so a batch cut short by SIGTERM (the
    # agent is cancelled mid-batch) would be acked and committed without having been stored.
    # Here a batch is acked only once it is stored.
    within = settings.batch_within_ms / 1000
    taken = (
        fetched_batches(stream, settings.batch_max, within)
        if settings.delivery == "queue"
        else stream.noack_take(settings.batch_max, within=within)
    )
    batches = joined_batches(
        taken,
        max_records=settings.batch_max,
        join_seconds=settings.batch_join_ms / 1000,
        behind=more_waiting,
    )
    try:
        async for batch in batches:
            # Packed records carry many quotes each: a batch is cut where its bytes pass the
            # limit, so that a batch of 5,000 records of 100 quotes each is not held (and
            # written) at once.
            for events in split_by_size(batch, _value_size, settings.batch_max_bytes):
                await _submit(stream, proc, events, last=events[-1] is batch[-1])
    except BaseException as exc:
        agent = current_agent()  # this one, or a copy of it (Faust's test context)
        if not (app.should_stop or (agent is not None and agent.should_stop)):
            await proc.checkpoint.stop()  # before waiting for the shutdown
            await _stop_the_worker(exc)
        raise
    finally:
        # What is applied and not stored stays unacked: read again after a restart.
        await proc.checkpoint.stop()


async def _stop_the_worker(exc: BaseException) -> None:
    """The agent ended outside a shutdown (an exception, or a cancel that is not the
    worker's). Faust would start it again on the stream where it left off: the records it
    held (applied and not stored, or fetched and not delivered yet) would stay unacked and
    never be fetched again, while the batches after them were stored, and those symbols'
    replay guards would then skip them after the next restart. The worker stops instead
    (exit status 1); restarted by its supervisor, it resumes from the committed offsets.
    Waits here until the shutdown cancels it, so that Faust does not start the agent
    meanwhile."""
    log.critical(
        "the quotes agent stopped unexpectedly (%r): stopping the worker, which resumes from "
        "the committed offsets when it is started again",
        exc,
    )
    await app.crash(exc)
    await asyncio.Event().wait()


def _value_size(event: Any) -> int:
    return len(event.message.value or b"")


async def _submit(stream: Any, proc: QuoteProcessor, events: list[Any], last: bool) -> None:
    """Applies the events' records; the checkpoint stores them while the next batch is taken,
    and acks them once stored (stockapp/checkpoint.py)."""
    records = [
        RawRecord(
            e.message.key,
            e.message.value,
            e.message.partition,
            e.message.offset,
            e.message.generation_id,
        )
        for e in events
    ]
    drained = last and len(records) < settings.batch_max and not more_waiting(events)

    async def acker(applied: Sequence[RawRecord]) -> None:
        for event, ackable in zip(events, proc.checkpoint.ackable(records, applied), strict=True):
            if ackable:
                await stream.ack(event)

    size = sum(len(record.value or b"") for record in records)
    await proc.submit_until_applied(records, drained, acker, size)


# How often the clock task asks the processor whether its closes are due: a comparison.
CLOCK_POLL_SECONDS = 0.1


@app.task
async def close_by_the_clock() -> None:
    """Closes candles by the wall clock (QuoteProcessor.on_timer) when the processor says a
    close is due: right after a live candle's end plus the grace period, and at least once a
    second. Not a Faust timer: a tick that takes longer than a 0.1 s timer's interval would be
    logged as overlapping, and most polls do nothing. A tick due before the next poll is
    slept to exactly: a closed candle (pushed live once stored) would otherwise wait up to a
    poll's 100 ms past its due time, half of it on average."""
    wait = CLOCK_POLL_SECONDS
    while not app.should_stop:
        await app.sleep(wait)
        wait = CLOCK_POLL_SECONDS
        processor = app.processor
        if processor is None or app.rebalancing or not tables_recovered(app):
            continue
        due_in = processor.tick_in(time.time())
        if due_in <= 0:
            try:
                await processor.on_timer()
            except Exception:
                log.exception("closing candles by the clock failed")
            # Asked again at once: a close waiting for batches is looked at every 10 ms.
            due_in = processor.tick_in(time.time())
            if due_in <= 0:
                # Due again already (a partition caught up while the tick stored): soon, but
                # not in a loop.
                due_in = TIMER_RECHECK_SECONDS
        if due_in > 0:
            wait = min(wait, due_in)


@app.on_partitions_revoked.connect
async def on_revoked(app: Any, /, *args: Any, **kwargs: Any) -> None:
    processor = app.processor
    if processor is not None:
        # Once the change in flight is made: forget the states, then wait until every state
        # written is in the changelog (stockapp/checkpoint.py).
        await processor.checkpoint.revoke(processor.revoke)
