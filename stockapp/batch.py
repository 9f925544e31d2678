"""Applying one batch of raw quote records to symbol states: pure and synchronous.

:meth:`Applier.apply_batch` parses the records, applies each quote to its symbol's state,
runs the signal rules, encodes each touched state and holds it to the state budget
(``STOCKAPP_STATE_MAX_BYTES``: a record that would take a state past it is dead-lettered and
left out of it), and returns everything the batch leaves as a :class:`BatchResult`. It does
no I/O beyond reading stored states through the :class:`StateCache`; making the result
durable is :class:`stockapp.checkpoint.Checkpoint`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from stockapp.models import Quote, QuoteRow
from stockapp.records import RawRecord, SideOutput
from stockapp.rule_runner import close_signals, provisional_signals, signals
from stockapp.state_cache import StateCache
from stockapp.stats import Stats
from stockapp.symbol_quota import SymbolQuota
from stockapp.tables.candle import Bar, Candle
from stockapp.tables.signals.book import RuleBook
from stockapp.tables.signals.signal import Signal
from stockapp.tables.symbol_state import Applied, SymbolState
from stockapp.validation import Element, InvalidQuote, Reason, parse_record

__all__ = ["EXPIRED_REASON", "Applier", "BatchResult", "ParsedBatch", "Step", "encode"]

# The processor's parts log as the processor: operators filter by that name.
log = logging.getLogger("stockapp.processing")

# What a quote whose id may have been forgotten is sent to the late topic with.
EXPIRED_REASON = (
    "its id is older than the ids a symbol keeps (tables/quote_ids.py): it cannot be told "
    "from a resend"
)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch leaves, for the checkpoint to make durable and the worker to count."""

    states: dict[str, bytes]  # the encoded states of the symbols it changed
    closed: list[Candle]
    signals: list[Signal]
    outputs: list[SideOutput]  # late records and dead letters
    rows: list[QuoteRow]  # raw quote rows
    stats: Stats  # to add to the worker's once the batch is stored
    positions: dict[int, int]  # the last offset of the batch, by partition

    @property
    def touched(self) -> set[str]:
        return set(self.states)


class Parsed(NamedTuple):
    record: RawRecord
    items: list[Quote | Element] | InvalidQuote  # or why the whole record is unusable
    packed: bool  # a JSON array of quotes


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A batch's records, parsed once: the worker looks up seeds for its symbols first."""

    records: Sequence[RawRecord]
    parsed: list[Parsed]
    now_ms: int

    @property
    def symbols(self) -> set[str]:
        return {
            q.symbol
            for _, items, _ in self.parsed
            if isinstance(items, list)
            for q in items
            if isinstance(q, Quote)
        }


def encode(state: SymbolState) -> bytes:
    """A state as the table stores it."""
    return orjson.dumps(state.to_dict())


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
    outside: bool = False  # outside the sessions that count: in no candle
    session: str | None = None  # the trading session it fell in
    repeat: bool | None = None  # applied again, it was a duplicate (True: by its id)
    refused: str | None = None  # why the state budget took it back out
    refused_kind: Reason = Reason.OVER_LIMIT  # and its kind

    def apply(self, state: SymbolState, closed: list[Candle]) -> Applied:
        return state.apply(self.bar, self.offset, closed, self.quote_id, self.index)

    def record_outcome(self, applied: Applied) -> None:
        self.late, self.revised, self.expired = applied.late, applied.revised, applied.expired
        self.outside, self.session = applied.outside, applied.session
        self.repeat = applied.repeat if applied.duplicate else None


def element_of(packed: bool, index: int, quote: Quote) -> tuple[int, bytes] | None:
    """What is forwarded for a quote of a packed record: the quote alone, as read."""
    return (index, orjson.dumps(quote.to_json())) if packed else None


class Applier:
    """Applies batches under one worker's settings: its topics, limits and rules."""

    def __init__(
        self,
        topic_dlq: str,
        topic_late: str,
        max_skew_ms: int,
        budget: int,
        quota: SymbolQuota,
        rules: RuleBook | None = None,
    ) -> None:
        self.topic_dlq = topic_dlq
        self.topic_late = topic_late
        self.max_skew_ms = max_skew_ms
        self.budget = budget  # a symbol's encoded state, at most
        self.quota = quota
        self.rules = rules  # signal rules run on each closed candle (None: none)
        # Symbols whose internal error was logged with its traceback: once each.
        self.internal_logged: set[str] = set()

    def internal_error(self, symbol: str, exc: BaseException) -> None:
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

    def parse(self, records: Sequence[RawRecord], now: float) -> ParsedBatch:
        now_ms = int(now * 1000)
        return ParsedBatch(records, [Parsed(r, *self._parse(r, now_ms)) for r in records], now_ms)

    def apply_batch(
        self,
        states: StateCache,
        records: Sequence[RawRecord] | ParsedBatch,
        now: float,
        topic_id: str | None = None,
        seeds: Mapping[str, dict[str, Any]] | None = None,
    ) -> BatchResult:
        """Apply ``records`` (or the batch :meth:`parse` made of them at ``now``) to
        ``states`` (changed in place). ``topic_id``: the quotes topic's id, for states to
        follow a recreated topic; ``seeds``: the backfill seeds this batch started symbols
        from, which a symbol rebuilt in the batch starts from again."""
        seeds = seeds or {}
        batch = records if isinstance(records, ParsedBatch) else self.parse(records, now)
        records = batch.records
        closed: list[Candle] = []
        touched: set[str] = set()
        outputs: list[SideOutput] = []
        positions: dict[int, int] = {}
        stats = Stats()
        parsed = batch.parsed
        steps: dict[str, list[Step]] = {}  # this batch's applied quotes, by symbol
        in_order: list[Step] = []
        dlq = self.topic_dlq
        quota = self.quota
        allowed = quota.allowed
        for record, items, packed in parsed:
            positions[record.partition] = record.offset
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
                state = states.load(symbol, create=False)
                refusal = quota.refusal(symbol) if state is None else None
                if refusal is None and allowed is not None and symbol not in allowed:
                    refusal = f"symbol {symbol} is not in STOCKAPP_SYMBOLS_ALLOWED"
                if refusal is not None:
                    stats.invalid += 1
                    stats.symbols_refused += 1
                    reason = f"element {index}: {refusal}" if packed else refusal
                    element = element_of(packed, index, quote)
                    outputs.append(SideOutput(dlq, record, reason, Reason.OVER_LIMIT, element))
                    continue
                if state is None:
                    state = states.load(symbol)
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
                    element = element_of(packed, index, quote)
                    outputs.append(SideOutput(dlq, record, reason, Reason.UNPROCESSABLE, element))
                    # Its candles closed in this batch are closed again by the replay.
                    closed[:] = [c for c in closed if c.symbol != symbol]
                    _replay(states, symbol, steps.get(symbol, []), closed, topic_id, seeds)
                    continue
                states.last_seen[symbol] = now  # a replayed record is activity too
                if applied.duplicate:
                    _count_repeat(stats, applied.repeat)
                    continue
                step.record_outcome(applied)
                steps.setdefault(symbol, []).append(step)
                in_order.append(step)
                touched.add(symbol)
        fired, failed = signals(self.rules, states.states, closed, touched)
        encoded: dict[str, bytes] = {}
        for symbol in touched:
            if symbol in failed:
                continue
            try:
                data: bytes | None = encode(states.states[symbol])
            except Exception:  # a state that cannot be encoded is refitted too
                log.exception("%s: its state could not be encoded", symbol)
                data = None
            if data is not None and len(data) <= self.budget:
                encoded[symbol] = data
                continue
            # The steps that make it too large, or not encodable, are taken back out.
            try:
                closed, fired = self._fit_budget(
                    states, symbol, steps[symbol], closed, fired, encoded, topic_id, seeds
                )
            except Exception as exc:  # noqa: BLE001 - a fault of ours for this symbol only
                failed[symbol] = exc
        for symbol, error in failed.items():
            # stockapp's own code failed for one symbol of the batch (a bug, deterministic: a
            # retry would fail again and hold up every partition of the worker). The symbol's
            # records go to the dead-letter topic with reason ``internal``, its state stays as
            # stored, and the rest of the batch goes on.
            self.internal_error(symbol, error)
            reason = f"internal error: {type(error).__name__}: {str(error)[:200]}"
            for step in steps.get(symbol, []):
                if step.refused is None:
                    step.refused, step.refused_kind = reason, Reason.INTERNAL
            _replay(states, symbol, [], [], topic_id, seeds)
            closed = [c for c in closed if c.symbol != symbol]
            fired = [s for s in fired if s.symbol != symbol]
            encoded.pop(symbol, None)
        rows: list[QuoteRow] = []
        for step in in_order:
            self._count(step, stats, rows, outputs)
        stats.stored_records += len(records)
        return BatchResult(encoded, closed, fired, outputs, rows, stats, positions)

    def _count(
        self, step: Step, stats: Stats, rows: list[QuoteRow], outputs: list[SideOutput]
    ) -> None:
        """What a quote applied in the batch leaves: its raw row, its stats, and a record on
        the late topic if it was late for an interval, or on the dead-letter topic if the
        state budget (or a fault of ours) took it back out."""
        record, index, quote = step.record, step.index, step.quote
        element = element_of(step.packed, index, quote)
        if step.refused is not None:
            stats.invalid += 1
            if step.refused_kind is Reason.INTERNAL:
                stats.internal_errors += 1
            else:
                stats.over_budget += 1
            reason = f"element {index}: {step.refused}" if step.packed else step.refused
            outputs.append(SideOutput(self.topic_dlq, record, reason, step.refused_kind, element))
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
            outputs.append(SideOutput(self.topic_late, record, EXPIRED_REASON, None, element))
            return
        rows.append(QuoteRow(quote, record.partition, record.offset, index, step.session))
        if step.outside:
            stats.outside_session += 1
        if step.late:
            stats.late += 1
            reason = "candle already closed for " + ", ".join(step.late)
            outputs.append(SideOutput(self.topic_late, record, reason, None, element))

    def _fit_budget(
        self,
        states: StateCache,
        symbol: str,
        steps: list[Step],
        closed: list[Candle],
        fired: list[Signal],
        encoded: dict[str, bytes],
        topic_id: str | None,
        seeds: Mapping[str, dict[str, Any]],
    ) -> tuple[list[Candle], list[Signal]]:
        """The symbol's state went over the budget in this batch: apply its steps again from
        the stored state one by one, and take back out (``Step.refused``) each that would
        leave it over. Its neighbours stay, and so does the partition. Returns the batch's
        closed candles and signals with the symbol's replaced by what the kept steps give.

        Each step costs an encoding of the state here, but only for a symbol over the budget,
        which the bounds of everything a state holds make a matter of settings (checked at
        start, stockapp/state_budget.py), not of the feed."""
        budget = self.budget
        book = self.rules
        state = _replay(states, symbol, [], [], topic_id, seeds)
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
                now_fired = close_signals(book, states.states, trial) if book is not None else []
                data = orjson.dumps(state.to_dict())
            except Exception as exc:  # noqa: BLE001 - as for any quote that cannot be applied
                step.refused = f"could not be applied: {type(exc).__name__}: {str(exc)[:200]}"
                step.refused_kind = Reason.UNPROCESSABLE
            else:
                if len(data) <= budget:
                    kept_closed += trial
                    kept_signals += now_fired
                    good = data
                    continue
                step.refused = (
                    f"the state of {symbol} would be {len(data)} bytes, over the state budget "
                    f"of {budget} (STOCKAPP_STATE_MAX_BYTES)"
                )
            state = states.decode(symbol, orjson.loads(good))
            states.states[symbol] = state
        if book is not None and book.any_provisional:
            kept_signals += provisional_signals(book, states.states, {symbol})
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
        fired = [s for s in fired if s.symbol != symbol] + kept_signals
        return closed, fired

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


def _replay(
    states: StateCache,
    symbol: str,
    steps: list[Step],
    closed: list[Candle],
    topic_id: str | None,
    seeds: Mapping[str, dict[str, Any]],
) -> SymbolState:
    """The symbol's state as stored before this batch (or its seed), on the current topic,
    with ``steps`` applied again (candles they close appended to ``closed``), in memory."""
    state = states.reload(symbol, seeds.get(symbol))
    if topic_id is not None:
        state.follow_topic(topic_id)
    for step in steps:
        step.apply(state, closed)
    return state


def replay_stored(
    states: StateCache, symbol: str, topic_id: str | None, seeds: Mapping[str, dict[str, Any]]
) -> SymbolState:
    """The symbol's state as stored, back in memory (a timer close that failed for it)."""
    return _replay(states, symbol, [], [], topic_id, seeds)


def _count_repeat(stats: Stats, by_id: bool | None) -> None:
    if by_id:
        stats.repeats += 1
    else:
        stats.duplicates += 1
