"""A worker's counters and what the web layer may read of its processor, as types.

The web layer (``/stats``, ``/metrics``, ``/ready``) reads a :class:`Snapshot` only: it never
reaches into the processor's caches, so they can change without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import KeysView
from dataclasses import dataclass, fields
from typing import Any, Protocol

from stockapp.tables.candle import Candle
from stockapp.tables.indicators import Values


@dataclass(slots=True)
class Stats:
    """The worker's counters since it started (``/stats`` ``counters``)."""

    batches: int = 0
    stored_records: int = 0  # records of batches stored (`make bench` times by it)
    quotes: int = 0  # applied and stored
    late: int = 0
    # Applied and stored as raw quotes, but outside the sessions that count in candles
    # (STOCKAPP_SESSION_HOURS): in no candle, not late.
    outside_session: int = 0
    revised: int = 0  # bars that replaced an earlier version of themselves
    duplicates: int = 0  # the same quote again, by its offset
    repeats: int = 0  # the same quote again, by its id
    expired_ids: int = 0  # quotes whose id may have been forgotten: sent to the late topic
    invalid: int = 0  # dead-lettered, for any reason
    apply_errors: int = 0  # dead-lettered: applying it raised
    internal_errors: int = 0  # dead-lettered: stockapp's own code failed for the symbol
    symbols_refused: int = 0  # dead-lettered: the allow-list or the symbols a worker holds
    over_budget: int = 0  # dead-lettered: the state budget
    states_over_budget: int = 0  # states stored over the budget by a timer close
    stale_records: int = 0  # fetched before a rebalance: left for the next fetch
    topic_recreated: int = 0
    seeded: int = 0  # symbols started from a backfill seed
    evicted: int = 0  # states dropped from memory (the cache is full)
    timer_closes: int = 0  # candles closed by the timer
    candles_closed: int = 0
    batch_retries: int = 0
    timer_retries: int = 0
    side_outputs_without_bytes: int = 0  # forwarded as headers alone: too large for the topic

    # Read as a mapping of the counters that moved (``dict(stats)``), as /stats shows them.
    def __getitem__(self, name: str) -> int:
        value: int = getattr(self, name)
        return value

    def keys(self) -> KeysView[str]:
        return self.as_dict().keys()

    def add(self, other: Stats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        """The counters that moved (as ``/stats`` has always shown them)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name))}


@dataclass(frozen=True, slots=True)
class StuckReport:
    """A batch that keeps failing (``/ready`` answers 503 with it)."""

    records: int
    tries: int
    error: str
    partition: int | None
    offset: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "tries": self.tries,
            "error": self.error,
            "partition": self.partition,
            "offset": self.offset,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the web layer reads of a worker's processor, copied at one moment."""

    stats: Stats
    closed_by_interval: Counter[str]
    invalid_by_reason: Counter[str]
    signals_by_rule: Counter[str]
    stuck: StuckReport | None
    positions: dict[int, int]  # last offset processed, by quotes partition
    assigned: list[int] | None  # quotes partitions assigned (None: not known)
    symbols_loaded: int  # states in memory
    watched: int  # symbols with forming candles whose states left memory
    forming: list[str]  # symbols with forming candles
    symbols_held: int | None  # symbols with state in this worker's partitions
    largest_state: tuple[int, str | None]  # (bytes, symbol)
    pending_sends: int
    cassandra_retries: int
    cassandra_in_flight: int
    first_batch_at: float | None

    @classmethod
    def empty(cls) -> Snapshot:
        """What a worker whose processor has not started shows."""
        return cls(
            stats=Stats(),
            closed_by_interval=Counter(),
            invalid_by_reason=Counter(),
            signals_by_rule=Counter(),
            stuck=None,
            positions={},
            assigned=[],
            symbols_loaded=0,
            watched=0,
            forming=[],
            symbols_held=None,
            largest_state=(0, None),
            pending_sends=0,
            cassandra_retries=0,
            cassandra_in_flight=0,
            first_batch_at=None,
        )


class ProcessorView(Protocol):
    """All the web layer may ask a worker's processor (``app.view``): a copy of its counters
    and state, and a symbol's forming candles with provisional indicators."""

    def snapshot(self) -> Snapshot: ...

    def forming(self, symbol: str, interval: str) -> list[tuple[Candle, Values]]: ...

    def owns(self, symbol: str) -> bool:
        """Whether the symbol's partition is assigned to this worker now."""
        ...
