"""The one owner of the order in which a change is made durable (docs/streaming.md).

A batch of quotes and a timer close both end in a :class:`Change`; the agent, the timer and
the revocation handler all go through :class:`Checkpoint`, so the order that makes a crash
harmless is written once:

1. raw quotes, closed candles and final signals are written to Cassandra, and acknowledged
   (then the ``stored`` listeners hear of the candles, and each change's ``written`` hook
   runs: what reads Cassandra may now see them, so the live push shows them);
2. side outputs (late records, dead letters), candles and signals are queued on the producer
   one after the other, then their deliveries are awaited together;
3. the changed symbol states are written to the table, and their changelog records are
   awaited until Kafka acknowledged them (Faust's own flush before a commit can leave them in
   its buffer: see faust_compat.DurableTable);
4. only then may the agent ack the records' offsets (:meth:`Checkpoint.ackable`).

A crash before 3 replays the batch onto the old state and rewrites the same rows; a crash
after 3 replays records at or below each symbol's ``last_offset``, which are skipped. A step
that fails raises, and nothing after it happens.

Applying and storing overlap (docs/streaming.md, "The commit order"): a batch is applied as
soon as it is taken, and its change queued here (:meth:`Checkpoint.enqueue`), while one task
(the storer) commits what is queued, first in first out, each time everything queued so far
as one change (later states replace earlier ones: a symbol's state is written once per
commit). So a record waits for its batch's apply, not for the previous batch's store, and a
forming candle is pushed live that much sooner. What that takes:

* the states of queued changes are read through :class:`Unstored` (a view of the table), so a
  state evicted from memory, or forgotten after a failed apply, comes back as applied;
* a failed commit drops every change queued after it too (each was applied onto the state the
  failed one left): under the lock the storer forgets the states, waits a backoff, and
  applies the dropped batches again, in order, onto the stored states; dropped timer closes
  are closed again by a later tick;
* acks stay in order: a batch's records are acked by the storer, once its change is stored;
* a revocation waits for the queue to be stored; a commit that fails meanwhile drops the rest
  unacked (the partitions' next owners read them again from the committed offsets).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson

from stockapp.models import QuoteRow
from stockapp.records import RawRecord, SideOutput
from stockapp.side_outputs import Publisher, SideOutputs
from stockapp.tables.candle import Candle
from stockapp.tables.signals.signal import Signal

log = logging.getLogger(__name__)

# Returns once the table's writes so far are durable (their changelog records acknowledged)
Durable = Callable[[], Awaitable[None]]
# Told of the closed candles once Cassandra acknowledged them (the web's candle cache).
StoredListener = Callable[[Sequence[Candle]], None]


class Writer(Protocol):
    async def write(
        self, quotes: Iterable[QuoteRow], candles: Iterable[Candle], signals: Iterable[Signal]
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Change:
    """What one batch or one timer close stores and publishes."""

    quotes: Sequence[QuoteRow]  # raw rows to store (empty when raw rows are off)
    closed: Sequence[Candle]
    signals: Sequence[Signal]  # provisional ones are published, never stored
    outputs: Sequence[SideOutput]
    states: dict[str, bytes]  # the encoded states of the symbols it touched


def merged(changes: Sequence[Change]) -> Change:
    """Changes queued one after the other, as one: everything of each, in order, and each
    symbol's last state (it was applied on top of the ones before)."""
    if len(changes) == 1:
        return changes[0]
    states: dict[str, bytes] = {}
    for change in changes:
        states.update(change.states)
    return Change(
        quotes=[row for change in changes for row in change.quotes],
        closed=[candle for change in changes for candle in change.closed],
        signals=[signal for change in changes for signal in change.signals],
        outputs=[output for change in changes for output in change.outputs],
        states=states,
    )


# Acks a batch's records, given those applied (agents/quotes.py).
Acker = Callable[[Sequence[RawRecord]], Awaitable[None]]


@dataclass(eq=False, slots=True)
class Pending:
    """A change queued to be stored, and what to do once it is."""

    change: Change
    # Resolved once stored, with the records applied (those to ack); None when dropped (a
    # revocation came, or a timer close's store failed: a later tick closes again).
    stored: asyncio.Future[Sequence[RawRecord] | None]
    # A batch's records, applied again after a failed store; None for a timer close.
    records: Sequence[RawRecord] | None = None
    drained: bool = True
    size: int = 0  # bytes of the batch's record values
    # Bytes of the encoded states its change holds until stored (set as it is queued: about
    # 12 KB a symbol, so a batch touching 5,000 symbols holds 60 MB).
    state_bytes: int = 0
    acker: Acker | None = None
    # Run once its rows are in Cassandra (live push of closed candles and signals), before the
    # rest of the commit: a commit that fails after that runs it again with the retry.
    written: Callable[[], None] | None = None
    # The processor's bookkeeping once stored (counters).
    after: Callable[[], None] | None = None
    applied: Sequence[RawRecord] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.records) if self.records is not None else 0

    @property
    def weight(self) -> int:
        """The bytes the queue's bound counts."""
        return self.size + self.state_bytes


class Unstored:
    """The table as the processor reads it: the states of queued changes first, then what is
    stored. (Only reads; the checkpoint writes the table itself.)"""

    def __init__(self, table: MutableMapping[bytes, Any], unstored: dict[bytes, bytes]) -> None:
        self.table = table
        self.unstored = unstored

    def get(self, key: bytes, default: Any = None) -> Any:
        data = self.unstored.get(key)
        return data if data is not None else self.table.get(key, default)

    def __getitem__(self, key: bytes) -> Any:
        data = self.unstored.get(key)
        return data if data is not None else self.table[key]

    def __contains__(self, key: object) -> bool:
        return key in self.unstored or key in self.table

    def keys(self) -> Iterator[bytes]:
        yield from self.unstored
        for key in list(self.table.keys()):
            if key not in self.unstored:
                yield key


class Hooks(Protocol):
    """What the storer asks of the processor when a store fails."""

    def forget(self) -> None:
        """Drop the states in memory (they are ahead of what is stored)."""

    async def reapply(self, pending: Pending) -> bool:
        """Apply a dropped batch's records again onto the stored states, and queue its change
        (False: none of its records may be applied any more)."""
        ...

    def failed(self, tries: int, exc: BaseException, dropped: Sequence[Pending]) -> None:
        """A store (or an apply after one) failed for the ``tries``-th time in a row."""


@dataclass(frozen=True, slots=True)
class Topics:
    candles: str
    signals: str


EMPTY = Change(quotes=(), closed=(), signals=(), outputs=(), states={})


def candle_message(candle: Candle, indicators: dict[str, float | None]) -> bytes:
    """The JSON of a candle on the candles topic (docs/streaming.md)."""
    return orjson.dumps(
        {
            "symbol": candle.symbol,
            "interval": candle.interval,
            "start": candle.start,
            "end": candle.end,
            "open": candle.open,
            "high": candle.high,
            "low": candle.low,
            "close": candle.close,
            "volume": candle.volume,
            "trades": candle.trades,
            "closed": candle.closed,
            "indicators": indicators,
        }
    )


class Checkpoint:
    """Makes changes durable in the order above; serialises them with revocations."""

    def __init__(
        self,
        writer: Writer,
        publish: Publisher,
        table: MutableMapping[bytes, Any],
        topics: Topics,
        side_outputs: SideOutputs,
        durable: Durable | None = None,
    ) -> None:
        self.writer = writer
        self.publish = publish
        self.table = table
        self.topics = topics
        self.side_outputs = side_outputs
        self.durable = durable
        # Held by a batch, a timer close and a revocation: each sees the others' changes
        # whole, and a revocation finds no change half made.
        self.lock = asyncio.Lock()
        # Records handed to the producer and not yet acknowledged by the broker (a worker that
        # waits on Kafka shows it here).
        self.pending_sends = 0
        self.stored_listeners: list[StoredListener] = []
        # The pipeline (see the module's docstring).
        self.hooks: Hooks | None = None
        self.queue: deque[Pending] = deque()
        self.queued_records = 0  # of the batches queued (not those being stored)
        self.queued_bytes = 0
        # Taken off the queue by the storer and not stored yet: the commit in flight, or the
        # changes a failed one dropped while they are applied again.
        self.held: list[Pending] = []
        # States written to the table whose changelog records are not known to be
        # acknowledged (a commit that failed waiting for them).
        self.unconfirmed: dict[str, bytes] = {}
        self.stopping = False
        self.recovering = False  # a failed store's changes are being dropped and applied again
        self.unstored: dict[bytes, bytes] = {}  # the latest state of each queued symbol
        self.storer: asyncio.Task[None] | None = None
        self.revocations = 0  # under way (Faust runs one at a time; counted all the same)
        # A store failed during a revocation: what is applied until the revocation forgets
        # the states was applied onto dropped changes, and is dropped too.
        self.dropping = False
        self._revoked = asyncio.Event()  # wakes a storer waiting out a backoff
        self._waiters: list[asyncio.Future[None]] = []
        self.failures = 0  # failed tries in a row
        self.retry_delay = 0.5  # seconds, doubled after each failed try
        self.max_retry_delay = 30.0
        # The queue's bound: a batch waits (before it is applied) while what is queued and not
        # yet being stored reaches either (a batch's own limits, agents/quotes.py).
        self.max_records = 5000
        self.max_bytes = 4 * 1024 * 1024

    # -- the pipeline ------------------------------------------------------------------------

    def view(self) -> Unstored:
        """The table as the processor reads it (queued states first)."""
        return Unstored(self.table, self.unstored)

    def new_pending(self, change: Change | None = None, **kwargs: Any) -> Pending:
        future: asyncio.Future[Sequence[RawRecord] | None] = (
            asyncio.get_running_loop().create_future()
        )
        return Pending(change or EMPTY, future, **kwargs)

    async def room(self) -> None:
        """Returns once a batch may be applied: the queue is below its bound and no
        revocation is under way. Call without the lock."""
        await self._until(self._has_room)

    def _has_room(self) -> bool:
        if self.revoking:
            return False
        return self.queued_records < self.max_records and self.queued_bytes < self.max_bytes

    def enqueue(self, pending: Pending) -> None:
        """Queue an applied change to be stored. Call with the lock held, right after applying
        it (its states are read from here until they are stored)."""
        if self.dropping or self.stopping or (self.recovering and pending.records is None):
            # A timer close queued while a failed store is recovered is given up (the next
            # tick closes again): it was closed on states the recovery drops.
            self._resolve(pending, None)
            return
        state_bytes = 0
        for symbol, data in pending.change.states.items():
            self.unstored[symbol.encode()] = data
            state_bytes += len(data)
        pending.state_bytes = state_bytes  # set again when a dropped batch is applied again
        self.queue.append(pending)
        self.queued_records += pending.count
        self.queued_bytes += pending.weight
        if self.storer is None or self.storer.done():
            self.storer = asyncio.ensure_future(self._store())
            self.storer.add_done_callback(self._storer_done)

    @property
    def revoking(self) -> bool:
        return self.revocations > 0

    @property
    def idle(self) -> bool:
        return not self.queue and (self.storer is None or self.storer.done())

    async def drain(self) -> None:
        """Returns once everything queued is stored or dropped."""
        await self._until(lambda: self.idle)

    async def stop(self) -> None:
        """The worker stops: whatever is queued stays unstored and unacked (read again after a
        restart), as a batch cut short."""
        self.stopping = True
        try:
            storer = self.storer
            if storer is not None and not storer.done():
                storer.cancel()
                await asyncio.gather(storer, return_exceptions=True)
            self.storer = None
            self._abandon()
        finally:
            self.stopping = False

    def _abandon(self) -> None:
        """Drop every change not stored; the states in memory and the queued ones hold them,
        so whatever applies next (an agent Faust restarts) starts from what is stored."""
        dropped = [*self.held, *self._take()]
        self.held = []
        if dropped or self.unstored:
            self._drop(dropped)
            self.unstored.clear()
            if self.hooks is not None:
                self.hooks.forget()

    async def _store(self) -> None:
        while self.queue:
            group = self._take_group()
            self.held = group
            change = merged([p.change for p in group])
            try:
                await self.commit(change, partial(self._written, group))
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if self.stopping or (task is not None and task.cancelling()):
                    raise
                # A future the commit awaited was cancelled (not this task): a failure.
                await self._recover(group, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - logged by the hooks, and retried
                await self._recover(group, exc)
                continue
            self.failures = 0
            for symbol, data in change.states.items():
                key = symbol.encode()
                if self.unstored.get(key) is data:  # not replaced by a change queued since
                    del self.unstored[key]
            for p in group:
                if p.after is not None:
                    try:
                        p.after()
                    except Exception:  # counters and live push must not fail what is stored
                        log.exception("bookkeeping after a stored change failed")
            for p in group:
                if p.acker is not None:
                    try:
                        await p.acker(p.applied)
                    except Exception:  # unacked, they are read again and skipped as stored
                        log.exception("acking stored records failed")
                self._resolve(p, p.applied)
            self.held = []

    async def _recover(self, group: list[Pending], exc: BaseException) -> None:
        """A commit failed: drop it and everything queued after it, then (under the lock, so
        no batch is applied in between) forget the states, wait, and apply the dropped batches
        again in order onto what is stored."""
        hooks = self.hooks
        self.failures += 1
        if hooks is not None:
            hooks.failed(self.failures, exc, group)
        if self.revoking or hooks is None:
            self._drop_for_revocation([*group, *self._take()])
            return
        # A timer close waits for its chunk under the lock: it hears now, before the lock is
        # asked for, and gives it up (one queued until the lock is taken, as it is queued).
        self.recovering = True
        try:
            for p in [*group, *self.queue]:
                if p.records is None:
                    self._resolve(p, None)
            async with self.lock:
                await self._apply_again(group, hooks)
        finally:
            self.recovering = False

    async def _apply_again(self, group: list[Pending], hooks: Hooks) -> None:
        """Under the lock: forget, wait, and apply the dropped batches again, in order."""
        taken = [*group, *self._take()]
        for p in taken:
            if p.records is None:  # a timer close queued before the lock was taken
                self._resolve(p, None)
        dropped = [p for p in taken if p.records is not None]
        self.held = dropped
        delay = min(self.retry_delay * 2 ** min(self.failures - 1, 16), self.max_retry_delay)
        while True:
            self._take()  # those applied again by a try that failed
            self.unstored.clear()
            hooks.forget()
            if not self.revoking:
                try:
                    async with asyncio.timeout(delay):
                        await self._revoked.wait()
                except TimeoutError:
                    pass
            if self.revoking:
                self._drop_for_revocation(dropped)
                return
            try:
                # States the failed commit wrote whose changelog records were not
                # acknowledged: written again first, or the batches applied again would
                # find their records stored and ack them.
                await self._confirm()
                for p in dropped:
                    if not await hooks.reapply(p):
                        self._resolve(p, [])
                self.held = []
                return
            except Exception as again:  # noqa: BLE001 - logged by the hooks, and retried
                self.failures += 1
                hooks.failed(self.failures, again, dropped)
                delay = min(delay * 2, self.max_retry_delay)

    def _drop_for_revocation(self, dropped: list[Pending]) -> None:
        """A store failed while partitions are revoked: the changes are dropped, unacked (the
        partitions' next owners read their records again), and so is whatever is applied
        before the revocation forgets the states (it was applied on top of them)."""
        self.dropping = self.revoking
        self._drop(dropped)
        self.held = []
        self.unstored.clear()

    async def _confirm(self) -> None:
        """Writes again the states whose changelog records a failed commit left unacknowledged,
        and waits until they are."""
        if not self.unconfirmed or self.durable is None:
            self.unconfirmed.clear()
            return
        for symbol, data in self.unconfirmed.items():
            self.table[symbol.encode()] = data
        await self.durable()
        self.unconfirmed.clear()

    def _take_group(self) -> list[Pending]:
        """What the storer commits next: everything queued, up to the first timer close. A
        close is stored without the batches applied after it, so a store that fails after
        it never drops a close that a later batch's late records were judged by."""
        group: list[Pending] = []
        while self.queue:
            p = self.queue.popleft()
            group.append(p)
            self.queued_records -= p.count
            self.queued_bytes -= p.weight
            if p.records is None:
                break
        self._notify()
        return group

    def _take(self) -> list[Pending]:
        """Everything queued, taken off the queue."""
        taken = list(self.queue)
        self.queue.clear()
        self.queued_records = self.queued_bytes = 0
        self._notify()
        return taken

    def _drop(self, pendings: Iterable[Pending]) -> None:
        for p in pendings:
            self._resolve(p, None)

    @staticmethod
    def _resolve(p: Pending, value: Sequence[RawRecord] | None) -> None:
        if not p.stored.done():
            p.stored.set_result(value)

    def _storer_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            if not self.stopping:  # cancelled by nobody's stop: nothing it held is stored
                self._abandon()
        elif task.exception() is not None:
            log.error("the storer failed", exc_info=task.exception())
            self._abandon()
        self._notify()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- one change --------------------------------------------------------------------------

    @staticmethod
    def _written(group: Sequence[Pending]) -> None:
        for p in group:
            if p.written is not None:
                try:
                    p.written()
                except Exception:  # live push must not fail what is being stored
                    log.exception("telling of a written change failed")

    async def commit(self, change: Change, written: Callable[[], None] | None = None) -> None:
        """Stores and publishes the change in the order of the module's docstring; ``written``
        runs once its rows are in Cassandra. Called by the storer (one commit at a time,
        without the lock: what it writes is applied already)."""
        final = [signal for signal in change.signals if not signal.provisional]
        if change.quotes or change.closed or final:
            await self.writer.write(change.quotes, change.closed, final)
            if change.closed:
                for listener in self.stored_listeners:
                    try:
                        listener(change.closed)
                    except Exception:  # a reader's view must not fail what is stored
                        log.exception("a listener of stored candles failed")
        if written is not None:
            written()
        await self._deliver(change)
        if change.states and self.durable is not None:
            self.unconfirmed.update(change.states)
        for symbol, data in change.states.items():
            self.table[symbol.encode()] = data
        if change.states and self.durable is not None:
            # The agent acks the batch next, and its offsets may be committed at once: the
            # states that cover them must be in Kafka first (faust_compat.DurableTable).
            await self.durable()
            self.unconfirmed.clear()

    async def _deliver(self, change: Change) -> None:
        # Queued one after the other, then awaited together: records queued concurrently
        # all wait on the same full producer batch and wake together each time one drains
        # (docs/operations.md#problems-seen-and-fixed).
        deliveries: list[Awaitable[Any]] = []
        for output in change.outputs:
            deliveries.append(await self.side_outputs.send(output, self.publish))
        for candle in change.closed:
            message = candle_message(candle, candle.indicators)
            deliveries.append(
                await self.publish(self.topics.candles, candle.symbol.encode(), message, [])
            )
        for signal in change.signals:
            message = orjson.dumps(signal.to_json())
            deliveries.append(
                await self.publish(self.topics.signals, signal.key.encode(), message, [])
            )
        if not deliveries:
            return
        # The state write after this moves the replay guard past these records: it waits for
        # the broker's acknowledgements (a failed delivery raises and the change is retried).
        self.pending_sends = len(deliveries)
        try:
            await asyncio.gather(*deliveries)
        finally:
            self.pending_sends = 0

    @staticmethod
    def ackable(records: Sequence[RawRecord], applied: Sequence[RawRecord]) -> list[bool]:
        """Which of a batch's records the agent may ack once :meth:`commit` returned: those
        applied. Records left out were fetched before a rebalance: unacked, they are fetched
        again from the committed offset (an ack would let the next commit pass them)."""
        if len(applied) == len(records):
            return [True] * len(records)
        done = {id(record) for record in applied}
        return [id(record) in done for record in records]

    async def revoke(self, forget: Callable[[], None]) -> None:
        """A rebalance is taking partitions: once the changes applied are stored (the lock,
        then the queue drained; nothing new is applied meanwhile), ``forget`` the states, and
        wait until every state written is in the changelog.

        Faust flushed its producer before telling us, but a change in flight wrote its
        states after that: their changelog records must be in Kafka before the new
        assignment's recovery reads the changelog, or it would restore older states while
        the batch's offsets get committed. (:meth:`commit` waits for them itself before the
        agent acks; this covers a batch cut short.)"""
        self.revocations += 1
        self._revoked.set()
        try:
            async with self.lock:
                await self.drain()
                forget()
                self.unstored.clear()
                self.dropping = False
                await self._confirm()
                if self.durable is not None:
                    await self.durable()
        finally:
            self.revocations -= 1
            if not self.revoking:
                self._revoked.clear()
                self.dropping = False
            self._notify()
