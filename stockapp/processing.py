"""A worker's processor: batches of raw quote records and timer ticks in, durable changes out.

It wires parts that have one job each: the :class:`StateCache` of decoded symbol states, the
pure :meth:`Applier.apply_batch` (stockapp/batch.py), the :class:`TimerCloser`
(stockapp/timer_close.py), the rule runner, and the :class:`Checkpoint` that makes what a
batch or a timer close changed durable in the one order that makes crashes harmless
(docs/streaming.md). What the stream tells it comes through one :class:`StreamPort`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from stockapp.batch import Applier, BatchResult, ParsedBatch, encode, replay_stored
from stockapp.checkpoint import Acker, Change, Checkpoint, Pending, Topics, Writer
from stockapp.metrics import BATCH_RECORDS, BATCH_SECONDS
from stockapp.records import RawRecord
from stockapp.rule_runner import signals as run_rules
from stockapp.settings import Settings
from stockapp.side_outputs import Publisher, SideOutputs
from stockapp.state_cache import StateCache, live
from stockapp.stats import Snapshot, Stats, StuckReport
from stockapp.stream_port import Detached, StreamPort
from stockapp.symbol_quota import SymbolQuota
from stockapp.tables.candle import Candle
from stockapp.tables.indicators import Values
from stockapp.tables.signals.book import RuleBook
from stockapp.tables.signals.signal import Signal
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from stockapp.timer_close import Question, TimerCloser

__all__ = ["AppliedListener", "ChangeListener", "QuoteProcessor", "RawRecord"]

log = logging.getLogger(__name__)

# A batch that still cannot be stored after this many tries is reported by /ready (503).
STUCK_AFTER_TRIES = 5
# The clock's closes: a tick at least this often (quiet symbols, rescans), and as soon as a live
# symbol's candle is due (its end plus the grace period); a due close that could not happen
# (a backlog, a run of full batches) is tried again after TIMER_RETRY_SECONDS.
TIMER_MAX_WAIT_SECONDS = 1.0
TIMER_RETRY_SECONDS = 0.25
# A close that waits for the batches before its question (timer_close.Question) is tried
# again as soon as one of its partitions is processed that far, looked at this often; the
# question is asked afresh after TIMER_MAX_WAIT_SECONDS (windows due since then close too).
TIMER_RECHECK_SECONDS = 0.01

# Told once a change's rows are in Cassandra (symbols touched, candles closed, signals fired),
# before its Kafka records and states are: live push. A store that fails after that and is
# applied again tells it again.
ChangeListener = Callable[[set[str], list[Candle], list[Signal]], None]
# Told after a batch is applied, before it is stored: (symbols touched, candles closed). A
# forming candle is provisional by nature, so live push need not wait for storage to show it.
AppliedListener = Callable[[set[str], list[Candle]], None]


class QuoteProcessor:
    def __init__(
        self,
        settings: Settings,
        table: MutableMapping[bytes, Any],
        writer: Writer,
        publish: Publisher,
        clock: Callable[[], float] = time.time,
        port: StreamPort | None = None,
        rules: RuleBook | None = None,
    ) -> None:
        self.settings = settings
        self.port: StreamPort = port if port is not None else Detached()
        self.spec = CandleSpec.of(settings)
        self.clock = clock
        self.stats = Stats()
        self.checkpoint = Checkpoint(
            writer,
            publish,
            table,
            Topics(candles=settings.topic_candles, signals=settings.topic_signals),
            SideOutputs(settings.topic_quotes, self.stats),
            self.port.durable,
        )
        self.checkpoint.hooks = self
        self.checkpoint.max_records = settings.batch_max
        self.checkpoint.max_bytes = settings.batch_max_bytes
        # States are read through the checkpoint: those of changes queued and not yet stored
        # first (stockapp/checkpoint.py).
        self.cache = StateCache(
            self.checkpoint.view(),
            self.spec,
            settings.state_cache_symbols,
            settings.quotes_partitions,
            clock,
        )
        self.quota = SymbolQuota(
            frozenset(settings.symbols_allowed) or None,
            settings.max_symbols,
            self.cache,
            lambda: self.port.owned(),
        )
        self.applier = Applier(
            settings.topic_dlq,
            settings.topic_late,
            int(settings.max_future_skew_seconds * 1000),
            settings.state_max_bytes,
            self.quota,
            rules,
        )
        self.closer = TimerCloser(
            self.cache, self.spec.grace_ms, settings.quotes_partitions, settings.idle_close_seconds
        )
        # The generation whose partitions were revoked last: its records are stale from the
        # revocation on, before the next assignment gives the consumer a new generation.
        self.revoked_generation: int | None = None
        self.current_topic_id: str | None = None
        self.topic_id_known = False  # asked again after each rebalance
        self.position: dict[int, int] = {}  # last offset processed, by partition
        self.drained = False  # the last batch emptied the stream's buffer
        self.last_batch = 0.0  # wall clock of the last batch
        self.first_batch: float | None = None  # wall clock of the first (`make bench` timing)
        self.next_tick_at = 0.0  # wall clock when the clock's closes should run next
        self.question: Question | None = None  # the last tick's, while a close waits for it
        self.forgets = 0  # times the states and positions were forgotten (a tick's question too)
        self.lock = self.checkpoint.lock  # the agent, the timer and a revocation
        # Candles closed per interval, and dead letters per reason class (the /metrics labels).
        self.closed_by_interval: Counter[str] = Counter()
        self.invalid_by_reason: Counter[str] = Counter()
        self.signals_by_rule: Counter[str] = Counter()  # signals fired, by rule
        # Set while a batch keeps failing (STUCK_AFTER_TRIES or more tries): what /ready shows.
        self.stuck: StuckReport | None = None
        # The backfill seeds the last batch started symbols from: a symbol rebuilt in it (or
        # by the timer after it) starts from its seed again when nothing is stored yet.
        self.seed_dicts: dict[str, dict] = {}
        self.listeners: list[ChangeListener] = []
        self.applied_listeners: list[AppliedListener] = []

    @property
    def rules(self) -> RuleBook | None:
        return self.applier.rules

    # The cache's parts, as the tests and the bench read them.
    @property
    def states(self) -> dict[str, SymbolState]:
        return self.cache.states

    @property
    def watch(self) -> dict[str, tuple[int, int | None]]:
        return self.cache.watch

    @property
    def last_seen(self) -> dict[str, float]:
        return self.cache.last_seen

    def largest_state(self) -> tuple[int, str | None]:
        """The largest state this worker wrote since the last rebalance: (bytes, symbol)."""
        return self.cache.largest()

    def snapshot(self) -> Snapshot:
        """What the web layer may read of this processor, copied now."""
        stats = Stats()
        stats.add(self.stats)
        owned = self.port.owned()
        return Snapshot(
            stats=stats,
            closed_by_interval=Counter(self.closed_by_interval),
            invalid_by_reason=Counter(self.invalid_by_reason),
            signals_by_rule=Counter(self.signals_by_rule),
            stuck=self.stuck,
            positions=dict(sorted(self.position.items())),
            assigned=sorted(owned) if owned is not None else None,
            symbols_loaded=len(self.cache),
            watched=len(self.cache.watch),
            forming=self.cache.forming(),
            symbols_held=self.quota.count,
            largest_state=self.cache.largest(),
            pending_sends=self.checkpoint.pending_sends,
            cassandra_retries=getattr(self.checkpoint.writer, "retries", 0),
            cassandra_in_flight=getattr(self.checkpoint.writer, "in_flight", 0),
            first_batch_at=self.first_batch,
        )

    def owns(self, symbol: str) -> bool:
        """Whether the symbol's partition is assigned to this worker now (not known yet: no)."""
        owned = self.port.owned()
        return owned is not None and self.cache.owns(symbol, owned)

    def forming(self, symbol: str, interval: str) -> list[tuple[Candle, Values]]:
        """The symbol's forming candles of ``interval`` with provisional indicators; reads only
        (an unknown symbol gets no state)."""
        state = self.cache.peek(symbol, self.port.owned)
        if state is None:
            return []
        return [(c, state.provisional(c)) for c in state.forming_candles(interval)]

    # -- rebalances --------------------------------------------------------------------------

    def revoke(self) -> None:
        """A rebalance took this worker's partitions (it may give some back): forget the
        states, and apply nothing fetched before it. Call with the lock held."""
        self.forget()
        self.revoked_generation = self.port.generation()

    def forget(self) -> None:
        """Partitions moved: states may now live on another worker; reload lazily."""
        self.cache.forget()
        self.closer.forget()
        self.quota.reset()
        self.position.clear()
        self.question = None
        self.forgets += 1
        self.topic_id_known = False

    # -- the stream --------------------------------------------------------------------------

    async def process_until_done(
        self, records: list[RawRecord], drained: bool = True, max_delay: float = 30.0
    ) -> list[RawRecord]:
        """Apply a batch and wait until it is stored; returns the records applied (those of a
        generation before a rebalance are not: see :meth:`submit`), the only ones to ack."""
        self.checkpoint.max_retry_delay = max_delay
        pending = await self.submit_until_applied(records, drained, max_delay=max_delay)
        return await self._stored(pending)

    async def process(self, records: list[RawRecord], drained: bool = True) -> list[RawRecord]:
        """Apply one batch and wait until it is stored (a failed store is retried by the
        checkpoint; a failed apply raises). Returns the records applied."""
        return await self._stored(await self.submit(records, drained))

    async def _stored(self, pending: Pending | None) -> list[RawRecord]:
        if pending is None:
            return []
        applied = await pending.stored
        return list(applied) if applied is not None else []

    async def submit_until_applied(
        self,
        records: list[RawRecord],
        drained: bool = True,
        acker: Acker | None = None,
        size: int = 0,
        max_delay: float = 30.0,
    ) -> Pending | None:
        """:meth:`submit`, tried again until the batch is applied. An apply fails on the
        infrastructure (the seeds' lookup in Cassandra, the topic id); a fault of stockapp's own
        code for a symbol is not retried (stockapp/batch.py dead-letters that symbol's
        records). The batch must not leave the agent unapplied: Faust acknowledges a batch's
        offsets when the agent moves on or its loop ends, even by an exception."""
        delay = 0.5
        tries = 0
        while True:
            try:
                pending = await self.submit(records, drained, acker, size)
                if self.checkpoint.failures == 0:
                    self.stuck = None
                return pending
            except Exception as exc:  # noqa: BLE001 - logged by _failed, and retried
                tries += 1
                self._failed(tries, exc, records, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    def _failed(
        self, tries: int, exc: BaseException, records: Sequence[RawRecord], delay: float
    ) -> None:
        self.stats.batch_retries += 1
        if tries >= STUCK_AFTER_TRIES:
            first = records[0] if records else None
            self.stuck = StuckReport(
                records=len(records),
                tries=tries,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
                partition=first.partition if first else None,
                offset=first.offset if first else None,
            )
        log.error(
            "a batch of %d records failed (try %d); retrying in %.1f s from the stored state",
            len(records),
            tries,
            delay,
            exc_info=exc,
        )

    async def submit(
        self,
        records: list[RawRecord],
        drained: bool = True,
        acker: Acker | None = None,
        size: int = 0,
    ) -> Pending | None:
        """Apply one batch and queue its change to be stored (stockapp/checkpoint.py); returns
        once it is applied (None: none of its records may be applied). ``drained``: the stream
        had no further records buffered. ``acker`` acks the records applied once stored.

        Waits first while the checkpoint's queue is full, or a revocation is under way.
        Records fetched in an earlier consumer generation are left out, unacknowledged: a
        rebalance came between their fetch and now, the worker has sought back to the
        committed offsets and will fetch them again (if it still owns their partition). Applied
        now, their state writes could miss the changelog read by the rebalance's recovery
        (while their offsets get committed), or land in a partition another worker owns.
        Checked under the lock, which a rebalance takes (``forget``) before it goes on.
        """
        await self.checkpoint.room()
        async with self.lock:
            pending = self.checkpoint.new_pending(
                records=records, drained=drained, size=size, acker=acker
            )
            try:
                applied = await self._apply(pending)
            except BaseException:
                # The states in memory may be ahead of what was applied and queued; those
                # queued are read back through the checkpoint's view of the table.
                self.forget()
                raise
            return pending if applied else None

    async def reapply(self, pending: Pending) -> bool:
        """The checkpoint's hook: a dropped batch, applied again (called with the lock held)."""
        return await self._apply(pending)

    def failed(self, tries: int, exc: BaseException, dropped: Sequence[Pending]) -> None:
        """The checkpoint's hook: a store failed; the batches dropped are applied again."""
        records = [r for p in dropped for r in (p.records or ())]
        delay = min(
            self.checkpoint.retry_delay * 2 ** min(tries - 1, 16),
            self.checkpoint.max_retry_delay,
        )
        self._failed(tries, exc, records, delay)

    async def _apply(self, pending: Pending) -> bool:
        """Apply ``pending``'s records and queue its change; False when none may be applied
        (a rebalance came since they were fetched)."""
        records = list(pending.records or ())
        generation = self.port.generation()
        if generation is not None:
            now_generation: int | None = generation
            if generation == self.revoked_generation:
                # Revoked, not assigned again yet: every tracked record is stale.
                now_generation = None
            current = [r for r in records if r.generation is None or r.generation == now_generation]
            if len(current) < len(records):
                self.stats.stale_records += len(records) - len(current)
                records = current
        if not records:
            return False
        began = time.perf_counter()
        result = await self._process(records, pending.drained)
        pending.applied = records

        def after() -> None:
            self.stats.batches += 1
            self._stored_batch(result)
            self.stuck = None
            BATCH_SECONDS.observe(time.perf_counter() - began)
            BATCH_RECORDS.observe(len(records))

        self._queue(pending, result, after)
        return True

    async def _process(self, records: list[RawRecord], drained: bool) -> BatchResult:
        now = self.clock()
        self.drained = drained
        self.last_batch = now
        if self.first_batch is None:
            self.first_batch = now
        if not self.topic_id_known:
            self.current_topic_id = await self.port.topic_id()
            self.topic_id_known = True
        batch = self.applier.parse(records, now)
        self.seed_dicts = {}  # a lookup that fails leaves none of the last batch's
        self.seed_dicts = await self._load_seeds(batch)
        result = self.applier.apply_batch(
            self.cache, batch, now, self.current_topic_id, self.seed_dicts
        )
        self.position.update(result.positions)
        self._tick_sooner(result.touched, now)
        self._tell_applied(result)
        return result

    async def _load_seeds(self, batch: ParsedBatch) -> dict[str, dict]:
        """Symbols this worker has no state for start from their backfill seed, if any (not
        looked up for symbols the limits would refuse: a junk feed must not cost a query
        each). Returns the seeds loaded."""
        room = self.quota.room()
        unknown = [s for s in batch.symbols if self.quota.allows(s) and not self.cache.holds(s)][
            : max(room, 0)
        ]
        if not unknown:
            return {}
        seeds = await self.port.seeds(unknown)
        for symbol, stored in seeds.items():
            self.cache.seed(symbol, stored)
            self.stats.seeded += 1
            self.quota.added()
        return seeds

    def _tell_applied(self, result: BatchResult) -> None:
        """Tell the applied listeners (live push of forming candles). Only a view of what is
        about to be stored: a listener that fails is logged, never fails the batch."""
        if not self.applied_listeners or not result.states:
            return
        touched = result.touched
        for listener in self.applied_listeners:
            try:
                listener(touched, result.closed)
            except Exception:
                log.exception("a listener of applied batches failed")

    # -- the timer ---------------------------------------------------------------------------

    async def on_timer(self) -> None:
        """Close the candles of live symbols by the wall clock, and of quiet ones after a while."""
        # The backlog is asked without the lock: its end offsets come from the broker, and
        # batches must not wait for the answer. The positions are read under the lock, with
        # no batch half applied, so they count the batches applied (queued to be stored or
        # stored): those the states hold. The tick closes by the wall clock as of before the
        # question, so a record that arrived after the answer is more than the grace period
        # late for any window this tick closes: a close waits only for the records that had
        # arrived (timer_close.Question), and the question is kept until they are applied.
        # A close queued behind a batch whose store fails is dropped with it
        # (stockapp/checkpoint.py).
        if await self._tick():
            # The question kept was of an earlier clock, and a close came due since: ask now.
            await self._tick()

    async def _tick(self) -> bool:
        """One tick; True when it closed with a question kept from an earlier tick that is
        now stale (a close came due after its clock, or it is TIMER_MAX_WAIT_SECONDS old):
        then dropped, to be asked again."""
        now = self.clock()
        asked: dict[int, int | None] | None = None
        async with self.lock:
            question = kept = self.question
            planned = self.next_tick_at
            forgets = self.forgets
            if question is None:
                asked = self._due_positions(now)
        if question is None and asked:
            answer = await self.port.backlog(asked)
            question = Question.answered(now, asked, answer, answered_at=self.clock())
        backlogs: dict[int, int | None] | None
        async with self.lock:
            if question is not None:
                now, backlogs = question.asked_at, question.backlogs(self.position)
            else:
                # None: the stream cannot tell a backlog; {}: nothing due, or busy.
                backlogs = None if asked is None else {}
            try:
                # Forgotten meanwhile (a rebalance, a failed store): the positions and the
                # assignment the question was asked for are gone; the next tick asks again.
                chunks = (
                    await self._close_by_timer(now, backlogs) if forgets == self.forgets else []
                )
            except Exception:
                # As for a failed batch: states in memory may be ahead of what is queued. The
                # next tick tries again from the table (and the checkpoint's queue).
                self.forget()
                log.exception("closing candles by the clock failed")
                chunks = None
            clock = self.clock()
            stale = kept is not None and (
                clock >= planned or clock - kept.answered_at >= TIMER_MAX_WAIT_SECONDS
            )
            if question is not None and (
                stale or forgets != self.forgets or not question.settle(self.position)
            ):
                # (Forgotten meanwhile, by a rebalance or a failed store: asked again.)
                question = None
            self.question = question
            self._plan_next_tick(clock)
        # The last chunk is stored without the lock: batches go on meanwhile.
        if chunks is None or (chunks and await chunks[-1].stored is None):
            self.stats.timer_retries += 1
            log.error("closing candles by the clock failed; retrying on the next tick")
            return False
        return stale

    def tick_in(self, now: float) -> float:
        """Seconds until the clock's closes should run (0: now). agents/quotes.py asks every
        0.1 s, or sooner when a tick is due sooner; while a close waits for the batches
        before its question, every TIMER_RECHECK_SECONDS (a comparison per partition)."""
        question = self.question
        due_in = max(self.next_tick_at - now, 0.0)
        if question is None:
            return due_in
        if (
            due_in == 0.0
            or question.reached(self.position)
            or now - question.answered_at >= TIMER_MAX_WAIT_SECONDS
        ):
            return 0.0
        return min(TIMER_RECHECK_SECONDS, due_in)

    def _tick_sooner(self, touched: set[str], now: float) -> None:
        """A batch may have started a live candle that ends before the next planned tick."""
        now_ms = int(now * 1000)
        states = self.cache.states
        covered = self._covered_until()
        for symbol in touched:
            state = states.get(symbol)
            if state is None or not live(state.event_max, now_ms):
                continue
            first_end = state.first_end
            if first_end is not None:
                due = (first_end + self.spec.grace_ms) / 1000
                if covered < due < self.next_tick_at:
                    self.next_tick_at = max(due, now)

    def _covered_until(self) -> float:
        """Closes due by then wait for the kept question (tick_in looks at it), not for a
        tick of their own."""
        return self.question.asked_at if self.question is not None else float("-inf")

    def _plan_next_tick(self, now: float) -> None:
        """After a tick: the next one when the first live candle is due, at the latest in
        TIMER_MAX_WAIT_SECONDS (quiet symbols close by the idle time, at this granularity)."""
        now_ms = int(now * 1000)
        ends = [
            first_end
            for state in self.cache.states.values()
            if live(state.event_max, now_ms) and (first_end := state.first_end) is not None
        ]
        planned = now + TIMER_MAX_WAIT_SECONDS
        covered = self._covered_until()
        dues = [due for end in ends if (due := (end + self.spec.grace_ms) / 1000) > covered]
        if dues:
            # One that is past and did not close (a backlog, a run of full batches): again
            # shortly.
            due = min(dues)
            planned = min(planned, due if due > now else now + TIMER_RETRY_SECONDS)
        self.next_tick_at = planned

    def _due_positions(self, now: float) -> dict[int, int | None] | None:
        """The position in each partition of a symbol this tick may close, to ask the backlog
        of in one question; None: the stream cannot tell a backlog (as in tests), so nothing
        waits. Empty when no symbol is due or in the middle of a run of full batches (no close
        then): each question is a request to the broker. Call with the lock held."""
        if not self.port.knows_backlog:
            return None
        if self._busy():
            return {}
        return self.closer.due_partitions(now, self.port.owned(), self.position)

    async def _close_by_timer(
        self, now: float, backlogs: dict[int, int | None] | None
    ) -> list[Pending] | None:
        """Queues the tick's closes, chunk by chunk; returns the chunks queued (None: one was
        dropped, as its store failed). Each chunk but the last is stored before the next is
        closed (the closer's contract: it loads states that left memory, chunk by chunk)."""
        chunks = self.closer.close(now, backlogs, self.port.owned(), self.position, self._busy)
        queued: list[Pending] = []
        for closed, touched in chunks:
            if queued and await queued[-1].stored is None:
                return None
            self.stats.timer_closes += len(closed)
            queued.append(self._emit_close(closed, touched))
        self.stats.evicted += self.cache.evict()
        return queued

    def _busy(self) -> bool:
        """In the middle of a run of full batches: the next one may be right behind."""
        return not self.drained and self.clock() - self.last_batch < 1.0

    def _emit_close(self, closed: list[Candle], touched: set[str]) -> Pending:
        """A timer close: its signals, then queued to be stored like a batch (nothing to
        dead-letter: a symbol whose rules fail keeps its stored state)."""
        fired, failed = run_rules(self.rules, self.cache.states, closed, touched)
        for symbol, exc in failed.items():
            self.applier.internal_error(symbol, exc)
            self.stats.internal_errors += 1
            replay_stored(self.cache, symbol, self.current_topic_id, self.seed_dicts)
            closed = [c for c in closed if c.symbol != symbol]
            fired = [s for s in fired if s.symbol != symbol]
            touched.discard(symbol)
        encoded = {s: encode(self.cache.states[s]) for s in touched}
        result = BatchResult(encoded, closed, fired, [], [], Stats(), {})
        pending = self.checkpoint.new_pending()
        self._queue(pending, result, lambda: self._stored_batch(result))
        return pending

    # -- effects -----------------------------------------------------------------------------

    def _queue(self, pending: Pending, result: BatchResult, after: Callable[[], None]) -> None:
        """Queue an applied change to be stored (stockapp/checkpoint.py); ``after`` runs once
        it is."""
        rows = result.rows if self.settings.store_raw_quotes else []
        pending.change = Change(rows, result.closed, result.signals, result.outputs, result.states)
        pending.written = lambda: self._written(result)
        pending.after = after
        self.checkpoint.enqueue(pending)
        # Safe with changes queued: their states are read back through the checkpoint.
        self.stats.evicted += self.cache.evict()

    def _stored_batch(self, result: BatchResult) -> None:
        """A change is stored: tell the counters."""
        closed, fired, encoded = result.closed, result.signals, result.states
        budget = self.applier.budget
        for symbol, data in encoded.items():
            self.cache.sizes[symbol] = len(data)
            if len(data) > budget:
                # A batch holds the states it changes to the budget; a timer close can still
                # pass it (closing candles fills indicator windows, which the start check
                # bounds), as can a state stored over it before (a smaller budget since).
                self.stats.states_over_budget += 1
                log.error(
                    "%s: its state is %d bytes, over the budget of %d", symbol, len(data), budget
                )
        self.stats.candles_closed += len(closed)
        self.closed_by_interval.update(candle.interval for candle in closed)
        self.signals_by_rule.update(signal.rule for signal in fired)
        self.stats.add(result.stats)
        self.invalid_by_reason.update(o.kind for o in result.outputs if o.kind is not None)

    def _written(self, result: BatchResult) -> None:
        """A change's rows are in Cassandra: tell the listeners (live push)."""
        for listener in self.listeners:
            try:
                listener(result.touched, result.closed, result.signals)
            except Exception:  # a reader's view must not fail what is stored
                log.exception("a listener of stored changes failed")
