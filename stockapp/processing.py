"""Applying batches of raw quote records to symbol state, and writing out the results.

The order of effects for a batch is what makes crashes harmless (docs/streaming.md):

1. raw quotes and closed candles are written to Cassandra, and acknowledged;
2. late records, dead letters and candles are handed to the Kafka producer;
3. the new symbol states go to the table (its changelog);
4. only then does the agent ask for the next batch, which acks this one's offsets. Faust
   flushes the producer (changelog included) before it commits offsets.

A crash before 3 replays the batch onto the old state and rewrites the same rows; a crash after
3 replays records at or below each symbol's ``last_offset``, which are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from stockapp.models import Quote, QuoteRow
from stockapp.partitioning import partition_for
from stockapp.settings import Settings
from stockapp.tables.candle import Candle
from stockapp.tables.indicators import Values
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from stockapp.validation import InvalidQuote, parse_quote

log = logging.getLogger(__name__)

# A symbol whose event time is this close to the wall clock is "live": its candles also close
# by the wall clock, so a quiet live symbol's candle closes about grace + 1 s after its end.
LIVE_WINDOW_MS = 60_000
RESCAN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


# (partition, last offset processed there since start or None) -> records not processed yet
# (None: cannot tell yet)
Backlog = Callable[[int, int | None], Awaitable[int | None]]


# symbols -> {symbol: SymbolState dict} of those that have a backfill seed
Seeds = Callable[[list[str]], Awaitable[dict[str, dict]]]

# Told after each change is stored: (symbols touched, candles closed). Live push.
ChangeListener = Callable[[set[str], list[Candle]], None]


class Writer(Protocol):
    async def write(self, quotes: Iterable[QuoteRow], candles: Iterable[Candle]) -> int: ...


class Publisher(Protocol):
    async def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None: ...


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
    ) -> None:
        self.settings = settings
        self.spec = CandleSpec.build(
            settings.intervals, settings.market_timezone, settings.grace_seconds
        )
        self.table = table
        self.writer = writer
        self.publish = publish
        self.clock = clock
        self.backlog = backlog
        self.seeds = seeds
        self.max_skew_ms = int(settings.max_future_skew_seconds * 1000)
        self.states: dict[str, SymbolState] = {}  # decoded table values, by symbol
        self.last_seen: dict[str, float] = {}  # wall clock of each symbol's last record
        self.position: dict[int, int] = {}  # last offset processed, by partition
        self.drained = False  # the last batch emptied the stream's buffer
        self.last_batch = 0.0  # wall clock of the last batch
        # When this worker last loaded the states in its table partitions (0: not since the
        # last rebalance). Repeated now and then: a symbol that sent nothing since a restart is
        # only found this way, and a scan that ran while stores were still opening would miss it.
        self.scanned_at = 0.0
        self.lock = asyncio.Lock()  # the agent and the timer both change states
        self.stats: Counter[str] = Counter()
        self.listeners: list[ChangeListener] = []

    # -- state cache -------------------------------------------------------------------------

    def state(self, symbol: str) -> SymbolState:
        state = self.states.get(symbol)
        if state is None:
            stored = self.table.get(symbol.encode())
            state = (
                SymbolState.from_dict(stored, self.spec)
                if stored
                else SymbolState(symbol, self.spec)
            )
            self.states[symbol] = state
        return state

    async def _load_seeds(self, symbols: set[str]) -> None:
        """Symbols this worker has no state for start from their backfill seed, if any."""
        if self.seeds is None:
            return
        unknown = [
            s for s in symbols if s not in self.states and self.table.get(s.encode()) is None
        ]
        if not unknown:
            return
        for symbol, stored in (await self.seeds(unknown)).items():
            self.states[symbol] = SymbolState.from_dict(stored, self.spec)
            self.stats["seeded"] += 1

    def forget(self) -> None:
        """Partitions moved: states may now live on another worker; reload lazily."""
        self.states.clear()
        self.position.clear()
        self.scanned_at = 0.0

    # -- the stream --------------------------------------------------------------------------

    async def process_until_done(
        self, records: list[RawRecord], drained: bool = True, max_delay: float = 30.0
    ) -> None:
        """Apply a batch, retrying it until it is stored.

        The batch must not leave the agent unstored: Faust acknowledges a batch's offsets when
        the agent moves on or its loop ends, even by an exception, and the next commit would
        skip whatever was not written. A failed attempt has already dropped this worker's
        in-memory states (see ``process``), so the retry re-applies the batch from the stored
        state; the writes are idempotent.
        """
        delay = 0.5
        while True:
            try:
                await self.process(records, drained)
                return
            except Exception:
                self.stats["batch_retries"] += 1
                log.exception(
                    "a batch of %d records failed; retrying in %.1f s from the stored state",
                    len(records),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def process(self, records: list[RawRecord], drained: bool = True) -> None:
        """Apply one batch. ``drained``: the stream had no further records buffered."""
        async with self.lock:
            try:
                await self._process(records, drained)
            except BaseException:
                # The states in memory are ahead of what was stored; the timer must not
                # persist them, and a retry must start from the table.
                self.forget()
                raise

    async def _process(self, records: list[RawRecord], drained: bool) -> None:
        now = self.clock()
        now_ms = int(now * 1000)
        self.drained = drained
        self.last_batch = now
        self.stats["batches"] += 1
        quotes: list[QuoteRow] = []
        closed: list[Candle] = []
        touched: set[str] = set()
        outputs: list[tuple[str, RawRecord, str]] = []
        stats = self.stats
        parsed: list[tuple[RawRecord, Quote | InvalidQuote]] = []
        for record in records:
            try:
                parsed.append(
                    (record, parse_quote(record.key, record.value, now_ms, self.max_skew_ms))
                )
            except InvalidQuote as exc:
                parsed.append((record, exc))
        await self._load_seeds({q.symbol for _, q in parsed if isinstance(q, Quote)})
        for record, quote in parsed:
            self.position[record.partition] = record.offset
            if isinstance(quote, InvalidQuote):
                stats["invalid"] += 1
                outputs.append((self.settings.topic_dlq, record, str(quote)))
                continue
            state = self.state(quote.symbol)
            applied = state.apply(quote.bar(), record.offset, closed)
            self.last_seen[quote.symbol] = now  # a replayed record is activity too
            if applied.duplicate:
                stats["duplicates"] += 1
                continue
            stats["quotes"] += 1
            touched.add(quote.symbol)
            quotes.append(QuoteRow(quote, record.partition, record.offset))
            if applied.late:
                stats["late"] += 1
                outputs.append(
                    (
                        self.settings.topic_late,
                        record,
                        "candle already closed for " + ", ".join(applied.late),
                    )
                )
        await self._emit(quotes, closed, touched, outputs)

    async def on_timer(self) -> None:
        """Close the candles of live symbols by the wall clock, and of quiet ones after a while."""
        async with self.lock:
            try:
                await self._close_by_timer()
            except Exception:
                # As for a failed batch: states in memory may be ahead of storage. The next
                # tick tries again from the table.
                self.forget()
                self.stats["timer_retries"] += 1
                log.exception("closing candles by the timer failed; retrying on the next tick")

    async def _close_by_timer(self) -> None:
        now = self.clock()
        if now - self.scanned_at >= RESCAN_SECONDS:
            for key in list(self.table.keys()):
                self.state(key.decode())
            self.scanned_at = now
        now_ms = int(now * 1000)
        grace_ms = self.spec.grace_ms
        closed: list[Candle] = []
        touched: set[str] = set()
        for symbol, state in self.states.items():
            if not state.has_forming:
                continue
            before = len(closed)
            seen = self.last_seen.setdefault(symbol, now)
            if state.event_max is not None and state.event_max >= now_ms - LIVE_WINDOW_MS:
                # Live: event time follows the wall clock, so the wall clock can stand in
                # for the ticks a quiet symbol does not send. Only past windows close.
                state.advance(now_ms - grace_ms, closed)
            elif now - seen >= self.settings.idle_close_seconds and await self._caught_up(symbol):
                # A replay that stopped: nothing will move its event time any more.
                state.close_all(closed)
            if len(closed) > before:
                touched.add(symbol)
        if touched:
            self.stats["timer_closes"] += len(closed)
            await self._emit([], closed, touched, [])

    async def _caught_up(self, symbol: str) -> bool:
        """Quiet only counts once nothing of the symbol's partition waits to be processed,
        and the stream is not in the middle of a run of full batches."""
        if not self.drained and self.clock() - self.last_batch < 1.0:
            return False  # a full batch, and the next one may be right behind it
        if self.backlog is None:
            return True
        partition = partition_for(symbol.encode(), self.settings.quotes_partitions)
        left = await self.backlog(partition, self.position.get(partition))
        return left is not None and left <= 0

    # -- effects -----------------------------------------------------------------------------

    async def _emit(
        self,
        quotes: list[QuoteRow],
        closed: list[Candle],
        touched: set[str],
        outputs: list[tuple[str, RawRecord, str]],
    ) -> None:
        stored_quotes = quotes if self.settings.store_raw_quotes else []
        if stored_quotes or closed:
            await self.writer.write(stored_quotes, closed)
        sends = [self._side_output(topic, record, reason) for topic, record, reason in outputs]
        candles_topic = self.settings.topic_candles
        for candle in closed:
            sends.append(
                self.publish(
                    candles_topic,
                    candle.symbol.encode(),
                    candle_message(candle, candle.indicators),
                    [],
                )
            )
        if sends:
            await asyncio.gather(*sends)
        for symbol in touched:
            self.table[symbol.encode()] = self.states[symbol].to_dict()
        self.stats["candles_closed"] += len(closed)
        for listener in self.listeners:
            listener(touched, closed)

    def forming(self, symbol: str, interval: str) -> list[tuple[Candle, Values]]:
        """The symbol's forming candles of ``interval`` with provisional indicators; reads only
        (an unknown symbol gets no state)."""
        state = self.states.get(symbol)
        if state is None:
            stored = self.table.get(symbol.encode())
            if not stored:
                return []
            state = SymbolState.from_dict(stored, self.spec)
        return [(c, state.provisional(c)) for c in state.forming_candles(interval)]

    def _side_output(self, topic: str, record: RawRecord, reason: str) -> Any:
        """Dead letters and late records keep the original key and bytes; why and where they
        came from travel in headers (the Kafka Connect convention)."""
        headers = [
            ("stockapp.reason", reason.encode()),
            ("stockapp.source.topic", self.settings.topic_quotes.encode()),
            ("stockapp.source.partition", str(record.partition).encode()),
            ("stockapp.source.offset", str(record.offset).encode()),
        ]
        return self.publish(topic, record.key, record.value, headers)
