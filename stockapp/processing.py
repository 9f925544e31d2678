"""Applying batches of raw quote records to symbol state, and writing out the results.

Each touched symbol's new state is encoded first, and a record that would take it past the
state budget (``STOCKAPP_STATE_MAX_BYTES``) is dead-lettered and left out of it. What a batch
or a timer close changed is then made durable by :class:`stockapp.checkpoint.Checkpoint`, the
one owner of the order that makes crashes harmless (docs/streaming.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from stockapp.checkpoint import Change, Checkpoint, Durable, Topics, Writer
from stockapp.metrics import BATCH_RECORDS, BATCH_SECONDS
from stockapp.models import Quote, QuoteRow
from stockapp.partitioning import symbol_partition
from stockapp.records import RawRecord, SideOutput
from stockapp.settings import Settings
from stockapp.side_outputs import Publisher, SideOutputs
from stockapp.stats import Snapshot, Stats, StuckReport
from stockapp.tables.candle import Bar, Candle
from stockapp.tables.indicators import Values
from stockapp.tables.signals.book import RuleBook
from stockapp.tables.signals.signal import Signal, on_close, on_forming
from stockapp.tables.symbol_state import Applied, CandleSpec, SymbolState
from stockapp.validation import Element, InvalidQuote, Reason, parse_record

__all__ = ["ChangeListener", "QuoteProcessor", "RawRecord"]

log = logging.getLogger(__name__)

# A symbol whose event time is this close to the wall clock is "live": its candles also close
# by the wall clock, so a quiet live symbol's candle closes about grace + 1 s after its end.
LIVE_WINDOW_MS = 60_000
RESCAN_SECONDS = 10.0
# Symbols whose timer closes are stored and published together: a replay that stops closes
# every symbol's candles at once (80,000 for 20,000 symbols and four intervals), and one
# write of them all would hold them all in memory and block the loop for seconds.
TIMER_CHUNK_SYMBOLS = 500
# A batch that still cannot be stored after this many tries is reported by /ready (503).
STUCK_AFTER_TRIES = 5
# What a quote whose id may have been forgotten is sent to the late topic with.
EXPIRED_REASON = (
    "its id is older than the ids a symbol keeps (tables/quote_ids.py): it cannot be told "
    "from a resend"
)


@dataclass(slots=True)
class Step:
    """One quote this batch applied to its symbol's state, and what came of it: enough to
    apply it again (a rebuild) or to take it back out (the state budget)."""

    bar: Bar
    offset: int
    quote_id: str | None
    index: int  # in the record (a packed one holds many quotes)
    record: RawRecord
    packed: bool
    quote: Quote
    late: tuple[str, ...] = ()  # intervals whose candle had closed
    revised: bool = False
    expired: bool = False  # its id may have been forgotten: late everywhere, not stored
    repeat: bool | None = None  # applied again, it was a duplicate (True: by its id)
    refused: str | None = None  # why the state budget took it back out
    refused_kind: Reason = Reason.OVER_LIMIT  # and its kind

    def apply(self, state: SymbolState, closed: list[Candle]) -> Applied:
        return state.apply(self.bar, self.offset, closed, self.quote_id, self.index)

    def record_outcome(self, applied: Applied) -> None:
        self.late, self.revised, self.expired = applied.late, applied.revised, applied.expired
        self.repeat = applied.repeat if applied.duplicate else None


# {partition: last offset processed there since start, or None} -> {partition: records not
# processed yet, or None: cannot tell}. One call answers every partition a timer tick asks
# about, so that the end offsets can be fresh from the broker (one request), not the ones the
# consumer last fetched, which a stall leaves behind.
Backlog = Callable[[dict[int, int | None]], Awaitable[dict[int, int | None]]]


def _element(packed: bool, index: int, quote: Quote) -> tuple[int, bytes] | None:
    """What is forwarded for a quote of a packed record: the quote alone, as read."""
    return (index, orjson.dumps(quote.to_json())) if packed else None


# The quotes topic's id (None: cannot tell, e.g. a broker older than Kafka 2.8)
TopicId = Callable[[], Awaitable[str | None]]

# The quotes partitions this worker is assigned now (None: not known yet)
Owned = Callable[[], set[int] | None]

# symbols -> {symbol: SymbolState dict} of those that have a backfill seed
Seeds = Callable[[list[str]], Awaitable[dict[str, dict]]]

# The consumer group generation now
Generation = Callable[[], int]

# Told after each change is stored: (symbols touched, candles closed, signals fired). Live push.
ChangeListener = Callable[[set[str], list[Candle], list[Signal]], None]


class QuoteProcessor:
    def __init__(
        self,
        settings: Settings,
        table: MutableMapping[bytes, Any],
        writer: Writer,
        publish: Publisher,
        clock: Callable[[], float] = time.time,
        backlog: Backlog | None = None,
        seeds: Seeds | None = None,
        owned: Owned | None = None,
        topic_id: TopicId | None = None,
        generation: Generation | None = None,
        durable: Durable | None = None,
        rules: RuleBook | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules  # signal rules run on each closed candle (None: none)
        self.spec = CandleSpec.build(
            settings.intervals,
            settings.market_timezone,
            settings.grace_seconds,
            settings.indicator_set,
        )
        self.table = table
        self.stats = Stats()
        self.checkpoint = Checkpoint(
            writer,
            publish,
            table,
            Topics(candles=settings.topic_candles, signals=settings.topic_signals),
            SideOutputs(settings.topic_quotes, self.stats),
            durable,
        )
        self.clock = clock
        self.backlog = backlog
        self.seeds = seeds
        self.owned = owned
        self.topic_id = topic_id
        self.generation = generation
        # The generation whose partitions were revoked last: its records are stale from the
        # revocation on, before the next assignment gives the consumer a new generation.
        self.revoked_generation: int | None = None
        self.current_topic_id: str | None = None
        self.topic_id_known = False  # asked again after each rebalance
        self.max_skew_ms = int(settings.max_future_skew_seconds * 1000)
        self.budget = settings.state_max_bytes  # a symbol's encoded state, at most
        # The only symbols processed (None: any).
        self.allowed = frozenset(settings.symbols_allowed) or None
        self.states: dict[str, SymbolState] = {}  # decoded table values, by symbol
        # Symbols with forming candles whose states left memory (the cache is full): when each
        # forming candle closes first, and the symbol's event time, for the timer to judge.
        self.watch: dict[str, tuple[int, int | None]] = {}
        # Symbols whose stored state the timer's scan has looked at since the last rebalance.
        self.scanned: set[str] = set()
        # Symbols whose state this worker holds in its partitions (None: count again), for
        # STOCKAPP_MAX_SYMBOLS.
        self.symbol_count: int | None = None
        # The size of each symbol's state as last written here (bytes), for /stats.
        self.state_sizes: dict[str, int] = {}
        self.last_seen: dict[str, float] = {}  # wall clock of each symbol's last record
        self.position: dict[int, int] = {}  # last offset processed, by partition
        self.drained = False  # the last batch emptied the stream's buffer
        self.last_batch = 0.0  # wall clock of the last batch
        self.first_batch: float | None = None  # wall clock of the first (`make bench` timing)
        # When this worker last loaded the states in its table partitions (0: not since the
        # last rebalance). Repeated now and then: a symbol that sent nothing since a restart is
        # only found this way, and a scan that ran while stores were still opening would miss it.
        self.scanned_at = 0.0
        self.lock = self.checkpoint.lock  # the agent, the timer and a revocation
        # Candles closed per interval, and dead letters per reason class (the /metrics labels).
        self.closed_by_interval: Counter[str] = Counter()
        self.invalid_by_reason: Counter[str] = Counter()
        self.signals_by_rule: Counter[str] = Counter()  # signals fired, by rule
        # Set while a batch keeps failing (STUCK_AFTER_TRIES or more tries): what /ready shows.
        self.stuck: StuckReport | None = None
        self._seed_dicts: dict[str, dict] = {}  # seeds loaded in the current batch
        self.listeners: list[ChangeListener] = []
        # Quote ids of symbols whose internal error was logged with its traceback: once each.
        self.internal_logged: set[str] = set()

    @property
    def writer(self) -> Writer:
        return self.checkpoint.writer

    def snapshot(self) -> Snapshot:
        """What the web layer may read of this processor, copied now."""
        stats = Stats()
        stats.add(self.stats)
        forming = [s for s, st in self.states.items() if st.has_forming] + list(self.watch)
        owned = self.owned() if self.owned is not None else None
        return Snapshot(
            stats=stats,
            closed_by_interval=Counter(self.closed_by_interval),
            invalid_by_reason=Counter(self.invalid_by_reason),
            signals_by_rule=Counter(self.signals_by_rule),
            stuck=self.stuck,
            positions=dict(sorted(self.position.items())),
            assigned=sorted(owned) if owned is not None else None,
            symbols_loaded=len(self.states),
            watched=len(self.watch),
            forming=forming,
            symbols_held=self.symbol_count,
            largest_state=self.largest_state(),
            pending_sends=self.checkpoint.pending_sends,
            cassandra_retries=getattr(self.checkpoint.writer, "retries", 0),
            cassandra_in_flight=getattr(self.checkpoint.writer, "in_flight", 0),
            first_batch_at=self.first_batch,
        )

    # -- state cache -------------------------------------------------------------------------

    def _stored(self, symbol: str) -> dict | None:
        """The symbol's state as the table holds it (JSON bytes), decoded; None: none."""
        data = self.table.get(symbol.encode())
        return orjson.loads(data) if data else None

    def _restored(self, symbol: str, stored: dict | None) -> SymbolState:
        return (
            SymbolState.from_dict(stored, self.spec) if stored else SymbolState(symbol, self.spec)
        )

    def state(self, symbol: str, create: bool = True) -> SymbolState | None:
        """The symbol's state, from memory or the table (moved to the most recent end of the
        cache); a new one if there is none (None instead when not ``create``)."""
        state = self.states.pop(symbol, None)  # re-inserted last: the dict's order is recency
        if state is None:
            stored = self._stored(symbol)
            if stored is None and not create:
                return None
            state = self._restored(symbol, stored)
        self.watch.pop(symbol, None)
        self.states[symbol] = state
        return state

    def _evict(self) -> None:
        """Keep at most ``state_cache_symbols`` decoded states, dropping the least recently
        used ones but live ones (their event time follows the wall clock, which the timer
        moves their watermark with on every tick). Those with forming candles stay watched by
        the timer through a small entry (when their first candle ends, their event time) and
        come back from the table when it closes them. Only called when every cached state is
        stored."""
        limit = self.settings.state_cache_symbols
        if len(self.last_seen) > len(self.states) + len(self.watch) + limit:
            # Symbols dropped by a rebalance: their quiet time restarts.
            self.last_seen = {
                s: t for s, t in self.last_seen.items() if s in self.states or s in self.watch
            }
        excess = len(self.states) - limit
        if excess <= 0:
            return
        now_ms = int(self.clock() * 1000)
        doomed = []
        for symbol, state in self.states.items():  # oldest first
            if not _live(state.event_max, now_ms):
                doomed.append(symbol)
                if len(doomed) == excess:
                    break
        for symbol in doomed:
            state = self.states.pop(symbol)
            first_end = state.first_end
            if first_end is not None:
                self.watch[symbol] = (first_end, state.event_max)
            else:
                self.last_seen.pop(symbol, None)
            self.stats.evicted += 1

    def largest_state(self) -> tuple[int, str | None]:
        """The largest state this worker wrote since the last rebalance: (bytes, symbol)."""
        if not self.state_sizes:
            return 0, None
        symbol = max(self.state_sizes, key=self.state_sizes.__getitem__)
        return self.state_sizes[symbol], symbol

    def _refusal(self, symbol: str) -> str | None:
        """Why a quote of a symbol this worker holds no state for may not start one, if it
        may not: the allow-list, or the number of symbols a worker holds."""
        if self.allowed is not None and symbol not in self.allowed:
            return f"symbol {symbol} is not in STOCKAPP_SYMBOLS_ALLOWED"
        limit = self.settings.max_symbols
        held = self._held()
        if held >= limit:
            return (
                f"this worker holds {held} symbols already "
                f"(STOCKAPP_MAX_SYMBOLS={limit}); new symbol {symbol} refused"
            )
        self.symbol_count = held + 1
        return None

    def _held(self) -> int:
        """How many symbols this worker holds state for in its partitions (counted from the
        table after each rebalance, then kept up to date)."""
        if self.symbol_count is None:
            owned = self.owned() if self.owned is not None else None
            self.symbol_count = sum(
                1 for key in self.table.keys() if self._owns(key.decode(), owned)
            )
        return self.symbol_count

    async def _load_seeds(self, symbols: set[str]) -> None:
        """Symbols this worker has no state for start from their backfill seed, if any (not
        looked up for symbols the limits would refuse: a junk feed must not cost a query
        each)."""
        if self.seeds is None:
            return
        room = self.settings.max_symbols - self._held()
        unknown = [
            s
            for s in symbols
            if (self.allowed is None or s in self.allowed)
            and s not in self.states
            and self.table.get(s.encode()) is None
        ][: max(room, 0)]
        if not unknown:
            return
        for symbol, stored in (await self.seeds(unknown)).items():
            self.states[symbol] = SymbolState.from_dict(stored, self.spec)
            self._seed_dicts[symbol] = stored
            self.stats.seeded += 1
            if self.symbol_count is not None:
                self.symbol_count += 1

    def _owns(self, symbol: str, owned: set[int] | None) -> bool:
        """Whether the symbol's partition is assigned here. A memory table keeps the keys this
        worker wrote before a rebalance took their partition away; acting on those would close
        or overwrite another worker's candles."""
        if owned is None:
            return True
        return symbol_partition(symbol, self.settings.quotes_partitions) in owned

    def revoke(self) -> None:
        """A rebalance took this worker's partitions (it may give some back): forget the
        states, and apply nothing fetched before it. Call with the lock held."""
        self.forget()
        if self.generation is not None:
            self.revoked_generation = self.generation()

    def forget(self) -> None:
        """Partitions moved: states may now live on another worker; reload lazily."""
        self.states.clear()
        self.watch.clear()
        self.scanned.clear()
        self.state_sizes.clear()
        self.symbol_count = None
        self.position.clear()
        self.scanned_at = 0.0
        self.topic_id_known = False

    # -- the stream --------------------------------------------------------------------------

    async def process_until_done(
        self, records: list[RawRecord], drained: bool = True, max_delay: float = 30.0
    ) -> list[RawRecord]:
        """Apply a batch, retrying it until it is stored; returns the records applied (those
        of a generation before a rebalance are not: see ``process``), the only ones to ack.

        The batch must not leave the agent unstored: Faust acknowledges a batch's offsets when
        the agent moves on or its loop ends, even by an exception, and the next commit would
        skip whatever was not written. A failed attempt has already dropped this worker's
        in-memory states (see ``process``), so the retry re-applies the batch from the stored
        state; the writes are idempotent.
        """
        delay = 0.5
        tries = 0
        while True:
            try:
                applied = await self.process(records, drained)
                self.stuck = None
                return applied
            except Exception as exc:
                tries += 1
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
                log.exception(
                    "a batch of %d records failed (try %d); retrying in %.1f s from the stored "
                    "state",
                    len(records),
                    tries,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def process(self, records: list[RawRecord], drained: bool = True) -> list[RawRecord]:
        """Apply one batch. ``drained``: the stream had no further records buffered. Returns
        the records applied.

        Records fetched in an earlier consumer generation are left out, unacknowledged: a
        rebalance came between their fetch and now, the worker has sought back to the
        committed offsets and will fetch them again (if it still owns their partition). Applied
        now, their state writes could miss the changelog read by the rebalance's recovery
        (while their offsets get committed), or land in a partition another worker owns.
        Checked under the lock, which a rebalance takes (``forget``) before it goes on.
        """
        async with self.lock:
            if self.generation is not None:
                generation: int | None = self.generation()
                if generation == self.revoked_generation:
                    # Revoked, not assigned again yet: every tracked record is stale.
                    generation = None
                current = [r for r in records if r.generation is None or r.generation == generation]
                if len(current) < len(records):
                    self.stats.stale_records += len(records) - len(current)
                    records = current
            if not records:
                return records
            began = time.perf_counter()
            try:
                await self._process(records, drained)
            except BaseException:
                # The states in memory are ahead of what was stored; the timer must not
                # persist them, and a retry must start from the table.
                self.forget()
                raise
            BATCH_SECONDS.observe(time.perf_counter() - began)
            BATCH_RECORDS.observe(len(records))
            return records

    async def _process(self, records: list[RawRecord], drained: bool) -> None:
        now = self.clock()
        now_ms = int(now * 1000)
        self.drained = drained
        self.last_batch = now
        if self.first_batch is None:
            self.first_batch = now
        self.stats.batches += 1
        closed: list[Candle] = []
        touched: set[str] = set()
        outputs: list[SideOutput] = []
        # Counted here and added to the worker's counters once the batch is stored: a batch
        # that fails is tried again, and must not count its quotes twice.
        stats = Stats()
        if not self.topic_id_known and self.topic_id is not None:
            self.current_topic_id = await self.topic_id()
            self.topic_id_known = True
        topic_id = self.current_topic_id
        parsed = [(record, *self._parse(record, now_ms)) for record in records]
        self._seed_dicts = {}
        await self._load_seeds(
            {
                q.symbol
                for _, items, _ in parsed
                if isinstance(items, list)
                for q in items
                if isinstance(q, Quote)
            }
        )
        steps: dict[str, list[Step]] = {}  # this batch's applied quotes, by symbol
        in_order: list[Step] = []
        dlq = self.settings.topic_dlq
        for record, items, packed in parsed:
            self.position[record.partition] = record.offset
            if isinstance(items, InvalidQuote):
                stats.invalid += 1
                outputs.append(SideOutput(dlq, record, str(items), items.kind))
                continue
            for index, quote in enumerate(items):
                if isinstance(quote, Element):
                    stats.invalid += 1
                    forwarded = (index, orjson.dumps(quote.value))
                    outputs.append(SideOutput(dlq, record, quote.reason, quote.kind, forwarded))
                    continue
                symbol = quote.symbol
                state = self.state(symbol, create=False)
                refusal = self._refusal(symbol) if state is None else None
                if refusal is None and self.allowed is not None and symbol not in self.allowed:
                    refusal = f"symbol {symbol} is not in STOCKAPP_SYMBOLS_ALLOWED"
                if refusal is not None:
                    stats.invalid += 1
                    stats.symbols_refused += 1
                    reason = f"element {index}: {refusal}" if packed else refusal
                    element = _element(packed, index, quote)
                    outputs.append(SideOutput(dlq, record, reason, Reason.OVER_LIMIT, element))
                    continue
                if state is None:
                    state = self.state(symbol)
                    assert state is not None
                bar = quote.bar()
                if topic_id is not None and state.follow_topic(topic_id):
                    log.warning(
                        "%s: the quotes topic was recreated (now %s); offsets start again",
                        symbol,
                        topic_id,
                    )
                    stats.topic_recreated += 1
                step = Step(bar, record.offset, quote.id, index, record, packed, quote)
                try:
                    applied = step.apply(state, closed)
                except Exception as exc:  # noqa: BLE001 - one quote must not stop the stream
                    # Validation should have refused it; whatever it was, it goes to the
                    # dead-letter topic with the reason, and the symbol's state is rebuilt
                    # without it.
                    log.warning("a quote of %s could not be applied: %r", symbol, exc)
                    stats.invalid += 1
                    stats.apply_errors += 1
                    reason = f"could not be applied: {type(exc).__name__}: {str(exc)[:200]}"
                    if packed:
                        reason = f"element {index}: {reason}"
                    element = _element(packed, index, quote)
                    outputs.append(SideOutput(dlq, record, reason, Reason.UNPROCESSABLE, element))
                    self._rebuild(symbol, steps.get(symbol, []), closed)
                    continue
                self.last_seen[symbol] = now  # a replayed record is activity too
                if applied.duplicate:
                    _count_repeat(stats, applied.repeat)
                    continue
                step.record_outcome(applied)
                steps.setdefault(symbol, []).append(step)
                in_order.append(step)
                touched.add(symbol)
        signals, failed = self._signals(closed, touched)
        encoded: dict[str, bytes] = {}
        for symbol in touched:
            if symbol in failed:
                continue
            try:
                data: bytes | None = self._encode(symbol)
            except Exception:  # a state that cannot be encoded is refitted too
                log.exception("%s: its state could not be encoded", symbol)
                data = None
            if data is not None and len(data) <= self.budget:
                encoded[symbol] = data
                continue
            # The steps that make it too large, or not encodable, are taken back out.
            try:
                closed, signals = self._fit_budget(symbol, steps[symbol], closed, signals, encoded)
            except Exception as exc:  # noqa: BLE001 - a fault of ours for this symbol only
                failed[symbol] = exc
        for symbol, error in failed.items():
            closed, signals = self._quarantine(
                symbol, steps.get(symbol, []), error, closed, signals
            )
            touched.discard(symbol)
            encoded.pop(symbol, None)
        quotes: list[QuoteRow] = []
        for step in in_order:
            self._count(step, stats, quotes, outputs)
        await self._emit(quotes, closed, touched, outputs, signals, encoded)
        stats.stored_records += len(records)
        self.stats.add(stats)
        self.invalid_by_reason.update(output.kind for output in outputs if output.kind is not None)

    def _quarantine(
        self,
        symbol: str,
        steps: list[Step],
        exc: BaseException,
        closed: list[Candle],
        signals: list[Signal],
    ) -> tuple[list[Candle], list[Signal]]:
        """stockapp's own code failed for one symbol of the batch (a bug, deterministic: a
        retry would fail again and hold up every partition of the worker). The symbol's
        records of the batch go to the dead-letter topic with reason ``internal``, its state
        stays as stored, and the rest of the batch goes on. Returns the batch's closed
        candles and signals without the symbol's."""
        self._internal_error(symbol, exc)
        reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
        for step in steps:
            if step.refused is None:
                step.refused, step.refused_kind = reason, Reason.INTERNAL
        self._replayed(symbol, [], [])
        closed = [c for c in closed if c.symbol != symbol]
        signals = [s for s in signals if s.symbol != symbol]
        return closed, signals

    def _internal_error(self, symbol: str, exc: BaseException) -> None:
        """Logged with its traceback the first time for a symbol, in one line after that: a
        deterministic fault fails the same way for each batch of the symbol."""
        if symbol not in self.internal_logged:
            self.internal_logged.add(symbol)
            log.error(
                "%s: internal error; its records go to the dead-letter topic (reason "
                "'internal'), the partition goes on",
                symbol,
                exc_info=exc,
            )
        else:
            log.error("%s: internal error again: %s: %.200s", symbol, type(exc).__name__, exc)

    def _count(
        self, step: Step, stats: Stats, quotes: list[QuoteRow], outputs: list[SideOutput]
    ) -> None:
        """What a quote applied in the batch leaves: its raw row, its stats, and a record on
        the late topic if it was late for an interval, or on the dead-letter topic if the
        state budget took it back out."""
        record, index, quote = step.record, step.index, step.quote
        element = _element(step.packed, index, quote)
        if step.refused is not None:
            stats.invalid += 1
            if step.refused_kind is Reason.INTERNAL:
                stats.internal_errors += 1
            else:
                stats.over_budget += 1
            reason = f"element {index}: {step.refused}" if step.packed else step.refused
            dlq = self.settings.topic_dlq
            outputs.append(SideOutput(dlq, record, reason, step.refused_kind, element))
            return
        if step.repeat is not None:
            _count_repeat(stats, step.repeat)
            return
        stats.quotes += 1
        if step.revised:
            stats.revised += 1
        if step.expired:
            # Maybe a resend whose id was forgotten: neither counted nor stored again.
            stats.late += 1
            stats.expired_ids += 1
            late = self.settings.topic_late
            outputs.append(SideOutput(late, record, EXPIRED_REASON, None, element))
            return
        quotes.append(QuoteRow(quote, record.partition, record.offset, index))
        if step.late:
            stats.late += 1
            reason = "candle already closed for " + ", ".join(step.late)
            outputs.append(SideOutput(self.settings.topic_late, record, reason, None, element))

    def _encode(self, symbol: str) -> bytes:
        return orjson.dumps(self.states[symbol].to_dict())

    def _fit_budget(
        self,
        symbol: str,
        steps: list[Step],
        closed: list[Candle],
        signals: list[Signal],
        encoded: dict[str, bytes],
    ) -> tuple[list[Candle], list[Signal]]:
        """The symbol's state went over the budget in this batch: apply its steps again from
        the stored state one by one, and take back out (``Step.refused``) each that would
        leave it over. Its neighbours stay, and so does the partition. Returns the batch's
        closed candles and signals with the symbol's replaced by what the kept steps give.

        Each step costs an encoding of the state here, but only for a symbol over the budget,
        which the bounds of everything a state holds make a matter of settings (checked at
        start, stockapp/state_budget.py), not of the feed."""
        budget = self.budget
        state = self._replayed(symbol, [], [])
        good = orjson.dumps(state.to_dict())
        kept_closed: list[Candle] = []
        kept_signals: list[Signal] = []
        for step in steps:
            trial: list[Candle] = []
            try:
                # What each step does now, without the steps refused before it, is what
                # counts: it may no longer be late (a refused step moved the watermark) or a
                # repeat (a refused step carried its id).
                step.record_outcome(step.apply(state, trial))
                fired = self._on_close(trial) if self.rules is not None else []
                data = orjson.dumps(state.to_dict())
            except Exception as exc:  # noqa: BLE001 - as for any quote that cannot be applied
                step.refused = f"could not be applied: {type(exc).__name__}: {str(exc)[:200]}"
                step.refused_kind = Reason.UNPROCESSABLE
            else:
                if len(data) <= budget:
                    kept_closed += trial
                    kept_signals += fired
                    good = data
                    continue
                step.refused = (
                    f"the state of {symbol} would be {len(data)} bytes, over the state budget "
                    f"of {budget} (STOCKAPP_STATE_MAX_BYTES)"
                )
            state = SymbolState.from_dict(orjson.loads(good), self.spec)
            self.states[symbol] = state
        if self.rules is not None and self.rules.any_provisional:
            kept_signals += self._provisional({symbol})
            good = orjson.dumps(state.to_dict())
        refused = sum(1 for step in steps if step.refused is not None)
        log.warning(
            "%s: %d quote(s) of the batch dead-lettered: the state could not be encoded within "
            "the budget of %d bytes",
            symbol,
            refused,
            budget,
        )
        encoded[symbol] = good
        closed = [c for c in closed if c.symbol != symbol] + kept_closed
        signals = [s for s in signals if s.symbol != symbol] + kept_signals
        return closed, signals

    def _parse(
        self, record: RawRecord, now_ms: int
    ) -> tuple[list[Quote | Element] | InvalidQuote, bool]:
        """The record's quotes (a bad element of a packed record as an Element), or why the
        whole record is unusable; and whether it is packed (a JSON array)."""
        packed = record.value is not None and record.value.lstrip()[:1] == b"["
        try:
            return parse_record(record.key, record.value, now_ms, self.max_skew_ms), packed
        except InvalidQuote as exc:
            return exc, packed
        except Exception as exc:  # noqa: BLE001 - an unforeseen input is a dead letter too
            reason = f"could not be parsed: {type(exc).__name__}: {str(exc)[:200]}"
            return InvalidQuote(Reason.UNPROCESSABLE, reason), packed

    def _rebuild(self, symbol: str, steps: list[Step], closed: list[Candle]) -> None:
        """The symbol's state as stored before this batch plus the batch's records that applied
        (a record that raised may have left it half-changed). Its candles closed in this batch
        are closed again by the replay, so the earlier copies leave ``closed``."""
        closed[:] = [c for c in closed if c.symbol != symbol]
        self._replayed(symbol, steps, closed)

    def _replayed(self, symbol: str, steps: list[Step], closed: list[Candle]) -> SymbolState:
        """The symbol's state as stored before this batch (or its seed), on the current topic,
        with ``steps`` applied again (candles they close appended to ``closed``), in memory."""
        state = self._restored(symbol, self._stored(symbol) or self._seed_dicts.get(symbol))
        if self.current_topic_id is not None:
            state.follow_topic(self.current_topic_id)
        for step in steps:
            step.apply(state, closed)
        self.states[symbol] = state
        return state

    async def on_timer(self) -> None:
        """Close the candles of live symbols by the wall clock, and of quiet ones after a while."""
        # The backlog is asked without the lock: its end offsets come from the broker, and
        # batches must not wait for the answer. The positions are read under the lock, with
        # no batch in flight, so they count stored batches only; they can only grow before
        # the close, so the answer can only overstate what waits (the safe side). The tick
        # closes by the wall clock as of before the question, so a record sent after it is
        # more than the grace period late for any window this tick closes.
        now = self.clock()
        async with self.lock:
            # Positions as of no batch in flight: a batch's offsets are recorded before it is
            # stored, and one that then fails is applied again after this tick's close.
            asked = self._due_positions(now)
        backlog = self.backlog  # None exactly when asked is (_due_positions)
        backlogs = (
            None if asked is None or backlog is None else await backlog(asked) if asked else {}
        )
        async with self.lock:
            try:
                await self._close_by_timer(now, backlogs)
            except Exception:
                # As for a failed batch: states in memory may be ahead of storage. The next
                # tick tries again from the table.
                self.forget()
                self.stats.timer_retries += 1
                log.exception("closing candles by the timer failed; retrying on the next tick")

    def _due_positions(self, now: float) -> dict[int, int | None] | None:
        """The position in each partition of a symbol this tick may close, to ask the backlog
        of in one question; None: no backlog to ask (as in tests), so nothing waits. Empty
        when no symbol is due or in the middle of a run of full batches (no close then): each
        question is a request to the broker. Call with the lock held."""
        if self.backlog is None:
            return None
        if self._busy():
            return {}
        owned = self.owned() if self.owned is not None else None
        count = self.settings.quotes_partitions
        now_ms = int(now * 1000)
        due_by = now_ms - self.spec.grace_ms
        partitions = set()
        for symbol, first_end, event_max in self._watched(owned):
            if first_end <= due_by if _live(event_max, now_ms) else self._idle(symbol, now):
                partitions.add(symbol_partition(symbol, count))
        return {p: self.position.get(p) for p in sorted(partitions)}

    def _watched(self, owned: set[int] | None) -> list[tuple[str, int, int | None]]:
        """The symbols with forming candles in this worker's partitions, in memory or not:
        (symbol, when its first forming candle ends, its event time), earliest end first."""
        found = [
            (symbol, first_end, state.event_max)
            for symbol, state in self.states.items()
            if (first_end := state.first_end) is not None
        ]
        found += [(symbol, end, event_max) for symbol, (end, event_max) in self.watch.items()]
        # The first to close first, whether in memory or not: the order closes are stored in
        # does not depend on what the cache happens to hold.
        found.sort(key=lambda entry: (entry[1], entry[0]))
        return [entry for entry in found if self._owns(entry[0], owned)]

    def _scan(self, owned: set[int] | None, now_ms: int) -> None:
        """Find the states with forming candles in the table that this worker has not looked
        at since the last rebalance (a symbol quiet since a restart is only found this way),
        and watch them without holding them in memory."""
        for key in list(self.table.keys()):
            symbol = key.decode()
            known = symbol in self.scanned or symbol in self.states or symbol in self.watch
            if known or not self._owns(symbol, owned):
                continue
            stored = self._stored(symbol)
            if stored is None:
                continue  # a scan that runs while stores are still opening looks again later
            self.scanned.add(symbol)
            state = SymbolState.from_dict(stored, self.spec)
            first_end = state.first_end
            if first_end is None:
                continue
            if _live(state.event_max, now_ms):  # the timer moves its watermark every tick
                self.states[symbol] = state
            else:
                self.watch[symbol] = (first_end, state.event_max)

    async def _close_by_timer(self, now: float, backlogs: dict[int, int | None] | None) -> None:
        owned = self.owned() if self.owned is not None else None
        if now - self.scanned_at >= RESCAN_SECONDS:
            self._scan(owned, int(now * 1000))
            self.scanned_at = now
        now_ms = int(now * 1000)
        grace_ms = self.spec.grace_ms
        due_by = now_ms - grace_ms
        count = self.settings.quotes_partitions
        busy = self._busy()

        def caught_up(symbol: str) -> bool:
            """Nothing of the symbol's partition waits, and the stream is not in the middle of
            a run of full batches. A partition not asked about (a symbol loaded since) waits
            for the next tick."""
            if busy:
                return False
            if backlogs is None:
                return True
            left = backlogs.get(symbol_partition(symbol, count))
            return left is not None and left <= 0

        closed: list[Candle] = []
        touched: set[str] = set()
        for symbol, _first_end, event_max in self._watched(owned):
            before = len(closed)
            self.last_seen.setdefault(symbol, now)
            if _live(event_max, now_ms):
                # Live: event time follows the wall clock, so the wall clock can stand in
                # for the ticks a quiet symbol does not send. Only past windows close, and
                # only once nothing waits in the symbol's partition: after a stall (a slow
                # Cassandra, GC, a rebalance) the records waiting there arrived on time and
                # must not be judged late because the worker was behind.
                if caught_up(symbol):
                    # Live states stay in memory (_evict), unless a batch that ran while the
                    # backlog was asked found it no longer live by then.
                    state = self.state(symbol)
                    assert state is not None
                    state.advance(due_by, closed)
                    if len(closed) > before:
                        partition = symbol_partition(symbol, count)
                        log.info(
                            "%s: closing %d candle(s) by the clock at %d (partition %d "
                            "processed to %s, %s left)",
                            symbol,
                            len(closed) - before,
                            due_by,
                            partition,
                            self.position.get(partition),
                            backlogs.get(partition) if backlogs is not None else "?",
                        )
            elif self._idle(symbol, now) and caught_up(symbol):
                # A replay that stopped: nothing will move its event time any more.
                state = self.state(symbol)
                assert state is not None
                state.close_all(closed)
                partition = symbol_partition(symbol, count)
                log.info(
                    "%s: quiet for %.1f s, closing its candles (partition %d processed to %s, "
                    "%s left)",
                    symbol,
                    now - self.last_seen[symbol],
                    partition,
                    self.position.get(partition),
                    backlogs.get(partition) if backlogs is not None else "?",
                )
            if len(closed) > before:
                touched.add(symbol)
                if len(touched) >= TIMER_CHUNK_SYMBOLS:
                    self.stats.timer_closes += len(closed)
                    await self._emit([], closed, touched, [])
                    closed, touched = [], set()
        if touched:
            self.stats.timer_closes += len(closed)
            await self._emit([], closed, touched, [])
        self._evict()

    def _idle(self, symbol: str, now: float) -> bool:
        """A symbol that sent nothing for STOCKAPP_IDLE_CLOSE_SECONDS (never seen: not idle)."""
        return now - self.last_seen.get(symbol, now) >= self.settings.idle_close_seconds

    def _busy(self) -> bool:
        """In the middle of a run of full batches: the next one may be right behind."""
        return not self.drained and self.clock() - self.last_batch < 1.0

    # -- effects -----------------------------------------------------------------------------

    async def _emit(
        self,
        quotes: list[QuoteRow],
        closed: list[Candle],
        touched: set[str],
        outputs: list[SideOutput],
        signals: list[Signal] | None = None,
        encoded: dict[str, bytes] | None = None,
    ) -> None:
        """Make a change durable (stockapp/checkpoint.py), then tell the counters, the
        listeners and the cache. ``signals`` and ``encoded`` (the touched states) are derived
        here unless the caller did (a batch does, to hold its states to the budget first)."""
        if signals is None:
            signals, failed = self._signals(closed, touched)
            for symbol, exc in failed.items():  # a timer close: nothing to dead-letter
                self._internal_error(symbol, exc)
                self.stats.internal_errors += 1
                self._replayed(symbol, [], [])
                closed = [c for c in closed if c.symbol != symbol]
                signals = [s for s in signals if s.symbol != symbol]
                touched.discard(symbol)
        if encoded is None:
            encoded = {symbol: self._encode(symbol) for symbol in touched}
        stored_quotes = quotes if self.settings.store_raw_quotes else []
        await self.checkpoint.commit(Change(stored_quotes, closed, signals, outputs, encoded))
        for symbol, data in encoded.items():
            self.state_sizes[symbol] = len(data)
            if len(data) > self.budget:
                # A batch holds the states it changes to the budget; a timer close can still
                # pass it (closing candles fills indicator windows, which the start check
                # bounds), as can a state stored over it before (a smaller budget since).
                self.stats.states_over_budget += 1
                log.error(
                    "%s: its state is %d bytes, over the budget of %d",
                    symbol,
                    len(data),
                    self.budget,
                )
        self.stats.candles_closed += len(closed)
        self.closed_by_interval.update(candle.interval for candle in closed)
        self.signals_by_rule.update(signal.rule for signal in signals)
        for listener in self.listeners:
            listener(touched, closed, signals)
        self._evict()

    def _signals(
        self, closed: list[Candle], touched: set[str]
    ) -> tuple[list[Signal], dict[str, BaseException]]:
        """Run the closed candles through the rules, in the order they closed, then ask the
        provisional rules about the touched symbols' forming candles. The rules' state is in
        each symbol's state, stored with it: a replay fires the same signals again.

        Each symbol's rules run apart: one whose rules raise (a fault of ours) is returned
        with its exception, and the signals of the others are kept, in the same order."""
        book = self.rules
        if book is None:
            return [], {}
        by_symbol: dict[str, list[int]] = {}
        for index, candle in enumerate(closed):
            by_symbol.setdefault(candle.symbol, []).append(index)
        on_candle: dict[int, list[Signal]] = {}
        failed: dict[str, BaseException] = {}
        for symbol, indexes in by_symbol.items():
            try:
                for index in indexes:
                    on_candle[index] = self._on_close([closed[index]], prune=False)
                _prune(self.states[symbol], book.keys)
            except Exception as exc:  # noqa: BLE001 - this symbol's records go to the DLQ
                failed[symbol] = exc
        fired = [
            signal
            for index, candle in enumerate(closed)
            if candle.symbol not in failed
            for signal in on_candle.get(index, ())
        ]
        if book.any_provisional:
            for symbol in touched:
                if symbol in failed:
                    continue
                try:
                    fired += self._provisional({symbol})
                except Exception as exc:  # noqa: BLE001 - as above
                    failed[symbol] = exc
        if failed:
            fired = [signal for signal in fired if signal.symbol not in failed]
        return fired, failed

    def _on_close(self, closed: list[Candle], prune: bool = True) -> list[Signal]:
        book = self.rules
        assert book is not None
        fired: list[Signal] = []
        for candle in closed:
            rules = book.applying(candle.symbol, candle.interval)
            if not rules:
                continue
            state = self.states[candle.symbol]
            fired += on_close(state.rules, rules, candle)
            for key, _ in rules:  # the candle a provisional firing was about has closed
                if state.marks.get(key) == candle.start:
                    del state.marks[key]
        if prune:
            # Rules deleted or changed since (a change is a new key): their state goes, also
            # where no rule applies any more, or it would pile up in the state with each change.
            for symbol in {candle.symbol for candle in closed}:
                _prune(self.states[symbol], book.keys)
        return fired

    def _provisional(self, touched: set[str]) -> list[Signal]:
        book = self.rules
        assert book is not None
        fired: list[Signal] = []
        for symbol in touched:
            state = self.states[symbol]
            if state.marks:
                _prune(state, book.keys)
            for candle in state.forming_candles():
                rules = book.applying(symbol, candle.interval)
                if any(spec.provisional for _, spec in rules):
                    fired += on_forming(
                        state.rules, state.marks, rules, candle, state.provisional(candle)
                    )
        return fired

    def forming(self, symbol: str, interval: str) -> list[tuple[Candle, Values]]:
        """The symbol's forming candles of ``interval`` with provisional indicators; reads only
        (an unknown symbol gets no state)."""
        state = self.states.get(symbol)
        if state is None:
            owned = self.owned() if self.owned is not None else None
            stored = self._stored(symbol) if self._owns(symbol, owned) else None
            if not stored:
                return []
            state = SymbolState.from_dict(stored, self.spec)
        return [(c, state.provisional(c)) for c in state.forming_candles(interval)]


def _prune(state: SymbolState, keys: frozenset[str]) -> None:
    """Drop the state of rules no longer in force, and their marks."""
    for key in [k for k in state.rules if k not in keys]:
        del state.rules[key]
    for key in [k for k in state.marks if k not in keys]:
        del state.marks[key]


def _count_repeat(stats: Stats, by_id: bool | None) -> None:
    if by_id:
        stats.repeats += 1
    else:
        stats.duplicates += 1


def _live(event_max: int | None, now_ms: int) -> bool:
    """A symbol whose event time follows the wall clock: the wall clock may close its
    windows."""
    return event_max is not None and event_max >= now_ms - LIVE_WINDOW_MS
