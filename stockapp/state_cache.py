"""The symbol states a worker holds decoded in memory, in front of its changelogged table.

The table holds each symbol's state as JSON bytes; decoding one is the costly part of reading
it, so the states of recently active symbols stay decoded here (at most
``STOCKAPP_STATE_CACHE_SYMBOLS``). Every state read goes through :meth:`StateCache.load` (or
:meth:`StateCache.reload` to start again from storage, :meth:`StateCache.peek` to read without
caching): one place decides between a stored state, a seed and a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson

from stockapp.partitioning import symbol_partition
from stockapp.tables.symbol_state import CandleSpec, SymbolState

__all__ = ["LIVE_WINDOW_MS", "StateCache", "live"]

# A symbol whose event time is this close to the wall clock is "live": its candles also close
# by the wall clock, so a quiet live symbol's candle closes just after its end plus the grace.
LIVE_WINDOW_MS = 60_000


def live(event_max: int | None, now_ms: int) -> bool:
    """A symbol whose event time follows the wall clock: the wall clock may close its
    windows."""
    return event_max is not None and event_max >= now_ms - LIVE_WINDOW_MS


class Stored(Protocol):
    """The table as the cache reads it: symbol bytes -> the state's JSON bytes (the
    checkpoint's view, stockapp/checkpoint.Unstored, or the table itself)."""

    def get(self, key: bytes, default: Any = None) -> Any: ...

    def keys(self) -> Any: ...


class StateCache:
    def __init__(
        self,
        table: Stored,
        spec: CandleSpec,
        limit: int,
        partitions: int,
        clock: Callable[[], float],
    ) -> None:
        self.table = table
        self.spec = spec
        self.limit = limit  # decoded states kept, at most (live ones aside)
        self.partitions = partitions  # of the quotes topic, which the table's keys follow
        self.clock = clock
        self.states: dict[str, SymbolState] = {}  # decoded, least recently used first
        # Symbols with forming candles whose states left memory (the cache is full): when each
        # forming candle closes first, and the symbol's event time, for the timer to judge.
        self.watch: dict[str, tuple[int, int | None]] = {}
        # Symbols whose stored state the timer's scan has looked at since the last rebalance.
        self.scanned: set[str] = set()
        # The size of each symbol's state as last written here (bytes), for /stats.
        self.sizes: dict[str, int] = {}
        self.last_seen: dict[str, float] = {}  # wall clock of each symbol's last record

    # -- reading -----------------------------------------------------------------------------

    def stored(self, symbol: str) -> dict[str, Any] | None:
        """The symbol's state as the table holds it, decoded; None: none."""
        data = self.table.get(symbol.encode())
        return orjson.loads(data) if data else None

    def decode(self, symbol: str, stored: dict[str, Any] | None) -> SymbolState:
        """A state from its stored (or seed) dict; a new one when there is none."""
        return (
            SymbolState.from_dict(stored, self.spec) if stored else SymbolState(symbol, self.spec)
        )

    def load(self, symbol: str, create: bool = True) -> SymbolState | None:
        """The symbol's state, from memory or the table (moved to the most recent end of the
        cache); a new one if there is none (None instead when not ``create``)."""
        state = self.states.pop(symbol, None)  # re-inserted last: the dict's order is recency
        if state is None:
            stored = self.stored(symbol)
            if stored is None and not create:
                return None
            state = self.decode(symbol, stored)
        self.watch.pop(symbol, None)
        self.states[symbol] = state
        return state

    def reload(self, symbol: str, seed: dict[str, Any] | None = None) -> SymbolState:
        """The symbol's state as stored (or its ``seed`` when none is), replacing the one in
        memory: what a batch that failed for the symbol starts again from."""
        state = self.decode(symbol, self.stored(symbol) or seed)
        self.states[symbol] = state
        return state

    def peek(self, symbol: str, owned: Callable[[], set[int] | None]) -> SymbolState | None:
        """The symbol's state, read only (an unknown symbol gets none, a state read from the
        table is not cached). ``owned`` is asked only when the state is not in memory."""
        state = self.states.get(symbol)
        if state is not None:
            return state
        stored = self.stored(symbol) if self.owns(symbol, owned()) else None
        return self.decode(symbol, stored) if stored else None

    def holds(self, symbol: str) -> bool:
        """Whether the symbol has a state, in memory or in the table."""
        return symbol in self.states or self.table.get(symbol.encode()) is not None

    def seed(self, symbol: str, seed: dict[str, Any]) -> None:
        """Start the symbol from its backfill seed (it has no state)."""
        self.states[symbol] = self.decode(symbol, seed)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.states

    def __len__(self) -> int:
        return len(self.states)

    def keys(self) -> Iterator[str]:
        """The symbols the table holds a state for (in any partition)."""
        for key in self.table.keys():
            yield key.decode()

    def owns(self, symbol: str, owned: set[int] | None) -> bool:
        """Whether the symbol's partition is assigned here. A memory table keeps the keys this
        worker wrote before a rebalance took their partition away; acting on those would close
        or overwrite another worker's candles."""
        if owned is None:
            return True
        return symbol_partition(symbol, self.partitions) in owned

    def forming(self) -> list[str]:
        """The symbols with forming candles, in memory or watched."""
        return [s for s, st in self.states.items() if st.has_forming] + list(self.watch)

    def largest(self) -> tuple[int, str | None]:
        """The largest state written here since the last rebalance: (bytes, symbol)."""
        if not self.sizes:
            return 0, None
        symbol = max(self.sizes, key=self.sizes.__getitem__)
        return self.sizes[symbol], symbol

    # -- upkeep ------------------------------------------------------------------------------

    def evict(self) -> int:
        """Keep at most ``limit`` decoded states, dropping the least recently used ones but
        live ones (their event time follows the wall clock, which the timer moves their
        watermark with on every tick). Those with forming candles stay watched by the timer
        through a small entry (when their first candle ends, their event time) and come back
        from the table when it closes them. Only called when every cached state is stored or
        queued to be (the checkpoint's view of the table returns the queued ones).
        Returns how many were dropped."""
        limit = self.limit
        if len(self.last_seen) > len(self.states) + len(self.watch) + limit:
            # Symbols dropped by a rebalance: their quiet time restarts.
            self.last_seen = {
                s: t for s, t in self.last_seen.items() if s in self.states or s in self.watch
            }
        excess = len(self.states) - limit
        if excess <= 0:
            return 0
        now_ms = int(self.clock() * 1000)
        doomed = []
        for symbol, state in self.states.items():  # oldest first
            if not live(state.event_max, now_ms):
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
        return len(doomed)

    def scan(self, owned: set[int] | None, now_ms: int) -> None:
        """Find the states with forming candles in the table that this worker has not looked
        at since the last rebalance (a symbol quiet since a restart is only found this way),
        and watch them without holding them in memory."""
        for symbol in list(self.keys()):
            known = symbol in self.scanned or symbol in self.states or symbol in self.watch
            if known or not self.owns(symbol, owned):
                continue
            stored = self.stored(symbol)
            if stored is None:
                continue  # a scan that runs while stores are still opening looks again later
            self.scanned.add(symbol)
            state = self.decode(symbol, stored)
            first_end = state.first_end
            if first_end is None:
                continue
            if live(state.event_max, now_ms):  # the timer moves its watermark every tick
                self.states[symbol] = state
            else:
                self.watch[symbol] = (first_end, state.event_max)

    def forget(self) -> None:
        """Partitions moved: states may now live on another worker; reload lazily."""
        self.states.clear()
        self.watch.clear()
        self.scanned.clear()
        self.sizes.clear()
