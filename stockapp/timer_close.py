"""Closing candles by the wall clock: live symbols' past windows, quiet symbols' last ones.

Event time moves only with a symbol's quotes. A live symbol's event time follows the wall
clock, so the clock may stand in for the ticks a quiet one does not send (also once it has
been quiet for longer than the live window: a thinly traded stock); a replay that stopped
(its event time far behind the wall clock when it last sent) will never move its event time
again, so its candles close once it has been quiet for ``STOCKAPP_IDLE_CLOSE_SECONDS``.
Either only once the records that had reached the symbol's partition when the tick asked are
applied: after a stall the records waiting there arrived on time and must not be judged late
because the worker was behind. Synchronous: the processor makes each chunk durable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from stockapp.partitioning import symbol_partition
from stockapp.state_cache import StateCache, live
from stockapp.tables.candle import Candle

__all__ = ["RESCAN_SECONDS", "TIMER_CHUNK_SYMBOLS", "Question", "TimerCloser"]

# The processor's parts log as the processor: operators filter by that name.
log = logging.getLogger("stockapp.processing")

RESCAN_SECONDS = 10.0
# Symbols whose timer closes are stored and published together: a replay that stops closes
# every symbol's candles at once (80,000 for 20,000 symbols and four intervals), and one
# write of them all would hold them all in memory and block the loop for seconds.
TIMER_CHUNK_SYMBOLS = 500

Backlogs = dict[int, int | None]

# In Question.through: nothing waited in the partition when asked, and nothing was processed
# there since the worker started or was assigned it (so there is no offset to wait for).
NOTHING_WAITED = -1


@dataclass
class Question:
    """One tick's question about what waits in its partitions, kept until the batches it
    waits for are applied.

    ``through``: by partition, the last offset that had arrived when the tick asked (None: the
    broker did not say). A record past it arrived after ``asked_at``, the tick's clock, so it
    is more than the grace period late for every window that tick may close: once a partition
    is processed through its offset, its symbols' closes need wait for nothing else. Asking
    "does anything wait?" again instead would seldom hear "no" while quotes keep coming (each
    retry finds those that arrived since), and the closes would wait for a pause.
    """

    asked_at: float
    through: dict[int, int | None]
    # When the answer came (the clock): it is kept TIMER_MAX_WAIT_SECONDS from then.
    answered_at: float = 0.0
    # The partitions a close still waits for, with the offset to process them through.
    waiting: dict[int, int] = field(default_factory=dict)

    @classmethod
    def answered(
        cls,
        asked_at: float,
        positions: dict[int, int | None],
        backlogs: Backlogs,
        answered_at: float,
    ) -> Question:
        """From the positions the backlog was asked for and the records left after them."""
        through: dict[int, int | None] = {}
        for partition, last in positions.items():
            left = backlogs.get(partition)
            if left is None:
                through[partition] = None
            elif last is None:
                # Left is counted from the committed offset, which this processor does not
                # know: only "nothing waits" can be used.
                through[partition] = NOTHING_WAITED if left <= 0 else None
            else:
                through[partition] = last + left
        return cls(asked_at, through, answered_at)

    def backlogs(self, position: dict[int, int]) -> Backlogs:
        """What still waits, of what had arrived when asked (None: unknown), for
        :meth:`TimerCloser.close`."""
        left: Backlogs = {}
        for partition, last in self.through.items():
            done = position.get(partition)
            if last is None:
                left[partition] = None
            elif last == NOTHING_WAITED:
                left[partition] = 0
            else:
                left[partition] = None if done is None else max(last - done, 0)
        return left

    def settle(self, position: dict[int, int]) -> bool:
        """After a close: whether it still waits for batches to be applied somewhere (and is
        worth keeping: a partition the broker did not answer for is asked again, soon)."""
        if any(last is None for last in self.through.values()):
            self.waiting = {}
            return False
        self.waiting = {
            partition: last
            for partition, last in self.through.items()
            if last is not None and last > position.get(partition, NOTHING_WAITED)
        }
        return bool(self.waiting)

    def reached(self, position: dict[int, int]) -> bool:
        """Whether some partition waited for is processed through its offset now (a
        comparison per partition: the clock task asks it often)."""
        return any(position.get(p, NOTHING_WAITED) >= last for p, last in self.waiting.items())


class TimerCloser:
    def __init__(
        self, cache: StateCache, grace_ms: int, partitions: int, idle_close_seconds: float
    ) -> None:
        self.cache = cache
        self.grace_ms = grace_ms
        self.partitions = partitions
        self.idle_close_seconds = idle_close_seconds
        # When this worker last loaded the states in its table partitions (0: not since the
        # last rebalance). Repeated now and then: a symbol that sent nothing since a restart is
        # only found this way, and a scan that ran while stores were still opening would miss it.
        self.scanned_at = 0.0

    def forget(self) -> None:
        self.scanned_at = 0.0

    def by_the_clock(self, symbol: str, event_max: int | None, now_ms: int) -> bool:
        """Whether the wall clock closes the symbol's windows as each ends: a live symbol, or
        one whose event time followed the wall clock when it last sent (a thinly traded
        stock that went quiet for a minute is not a replay that stopped: closing all its
        candles, the day's too, would make the rest of its day late)."""
        if live(event_max, now_ms):
            return True
        seen = self.cache.last_seen.get(symbol)
        return seen is not None and live(event_max, int(seen * 1000))

    def idle(self, symbol: str, now: float) -> bool:
        """A symbol that sent nothing for STOCKAPP_IDLE_CLOSE_SECONDS (never seen: not idle)."""
        return now - self.cache.last_seen.get(symbol, now) >= self.idle_close_seconds

    def watched(self, owned: set[int] | None) -> list[tuple[str, int, int | None]]:
        """The symbols with forming candles in this worker's partitions, in memory or not:
        (symbol, when its first forming candle ends, its event time), earliest end first."""
        cache = self.cache
        found = [
            (symbol, first_end, state.event_max)
            for symbol, state in cache.states.items()
            if (first_end := state.first_end) is not None
        ]
        found += [(symbol, end, event_max) for symbol, (end, event_max) in cache.watch.items()]
        # The first to close first, whether in memory or not: the order closes are stored in
        # does not depend on what the cache happens to hold.
        found.sort(key=lambda entry: (entry[1], entry[0]))
        return [entry for entry in found if cache.owns(entry[0], owned)]

    def due_partitions(
        self, now: float, owned: set[int] | None, position: dict[int, int]
    ) -> dict[int, int | None]:
        """The position in each partition of a symbol this tick may close, to ask the backlog
        of in one question."""
        now_ms = int(now * 1000)
        due_by = now_ms - self.grace_ms
        partitions = set()
        for symbol, first_end, event_max in self.watched(owned):
            clock = self.by_the_clock(symbol, event_max, now_ms)
            if first_end <= due_by if clock else self.idle(symbol, now):
                partitions.add(symbol_partition(symbol, self.partitions))
        return {p: position.get(p) for p in sorted(partitions)}

    def close(
        self,
        now: float,
        backlogs: Backlogs | None,
        owned: set[int] | None,
        position: dict[int, int],
        busy: Callable[[], bool],
    ) -> Iterator[tuple[list[Candle], set[str]]]:
        """The candles this tick closes, in chunks of at most TIMER_CHUNK_SYMBOLS symbols:
        (closed candles, symbols touched). ``backlogs`` (None: nothing waits anywhere) as
        answered for :meth:`due_partitions`; ``busy``: whether the stream is in the middle of
        a run of full batches (asked after the rescan), when nothing closes. Each chunk must
        be stored before the next is asked for."""
        cache = self.cache
        if now - self.scanned_at >= RESCAN_SECONDS:
            cache.scan(owned, int(now * 1000))
            self.scanned_at = now
        now_ms = int(now * 1000)
        due_by = now_ms - self.grace_ms
        count = self.partitions
        busy_now = busy()

        def caught_up(symbol: str) -> bool:
            """Nothing of the symbol's partition waits, and the stream is not in the middle of
            a run of full batches. A partition not asked about (a symbol loaded since) waits
            for the next tick."""
            if busy_now:
                return False
            if backlogs is None:
                return True
            left = backlogs.get(symbol_partition(symbol, count))
            return left is not None and left <= 0

        closed: list[Candle] = []
        touched: set[str] = set()
        for symbol, _first_end, event_max in self.watched(owned):
            before = len(closed)
            cache.last_seen.setdefault(symbol, now)
            if self.by_the_clock(symbol, event_max, now_ms):
                # Only past windows close, and only once nothing waits in the partition.
                if caught_up(symbol):
                    # Live states stay in memory (StateCache.evict), unless a batch that ran
                    # while the backlog was asked found it no longer live by then.
                    state = cache.load(symbol)
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
                            position.get(partition),
                            backlogs.get(partition) if backlogs is not None else "?",
                        )
            elif self.idle(symbol, now) and caught_up(symbol):
                # A replay that stopped: nothing will move its event time any more.
                state = cache.load(symbol)
                assert state is not None
                state.close_all(closed)
                partition = symbol_partition(symbol, count)
                log.info(
                    "%s: quiet for %.1f s, closing its candles (partition %d processed to %s, "
                    "%s left)",
                    symbol,
                    now - cache.last_seen[symbol],
                    partition,
                    position.get(partition),
                    backlogs.get(partition) if backlogs is not None else "?",
                )
            if len(closed) > before:
                touched.add(symbol)
                if len(touched) >= TIMER_CHUNK_SYMBOLS:
                    yield closed, touched
                    closed, touched = [], set()
        if touched:
            yield closed, touched
