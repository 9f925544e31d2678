"""What one symbol remembers of the quote ids it applied: bounded, forgotten oldest first.

An id tells a resend (the same quote again: a repeat) and a revision (a bar sent again with
other values) from a new quote. Memory of ids is what a symbol's state grows with on a fast
feed, so it is bounded twice: by event time (``ID_HORIZON_MS`` behind the symbol's watermark,
enough for any producer's or vendor's resend) and by count (whatever the rate). Ids are kept as
short digests, so a 64-character id costs what a 6-character one does.

Once an id may have been forgotten, a quote carrying it can no longer be told from a new one.
Rather than risk counting a resend twice, a quote with an id is late for every interval when it
ends more than the horizon behind the watermark, or at or before the newest id the count made
the symbol forget (the *floor*; docs/streaming.md, "Quote").
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

ID_HORIZON_MS = 15 * 60_000
TICK_IDS_MAX = 1536
# A bar is kept with its values (what a revision is compared with and a candle rebuilt from),
# so it costs about four times a tick's id: fewer are kept. The horizon bounds a feed of
# minute bars (15 of them); the count bounds one of 1-second bars (about 4 minutes).
BAR_IDS_MAX = 256

# [ts, span_ms, open, high, low, close, volume, seq]; an int: a bar kept by a state written
# before bars had values or sequence numbers, known (a resend is a repeat) but never revised.
KeptBar = list[float] | int


def digest(quote_id: str) -> str:
    """A 12-character digest of the id (72 bits: a clash among the few thousand ids a symbol
    keeps is about as likely as 1 in 10^18)."""
    raw = hashlib.blake2b(quote_id.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(raw).decode()


def bar_digest(quote_id: str, ts: int, span_ms: int) -> str:
    """A bar is its id with its start and length: a version of it that "moved" would be a
    new bar once the old one's id is forgotten, and counted twice; so it is one from the
    start (a vendor's bar id names its start anyway, as ``stockapp produce``'s do)."""
    return digest(f"{quote_id}\x00{ts}\x00{span_ms}")


class TickIds:
    """Digests of recent ticks' ids -> the tick's event time, oldest arrival first."""

    __slots__ = ("entries", "floor")

    def __init__(self, entries: dict[str, int] | None = None, floor: int | None = None) -> None:
        self.entries: dict[str, int] = entries or {}
        self.floor = floor  # ticks at or before it have forgotten ids

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def expired(self, ts: int, horizon: int | None) -> bool:
        """``horizon``: the oldest event time whose ids are kept (None: no watermark yet).
        Ticks at the floor's own time pass: a busy second of a feed stamped to the second can
        hold more ticks than the count, and only a resend of the one tick forgotten at that
        very time could be counted twice."""
        return (horizon is not None and ts < horizon) or (
            self.floor is not None and ts < self.floor
        )

    def add(self, key: str, ts: int) -> None:
        self.entries[key] = ts
        self.trim()

    def trim(self) -> None:
        """Forget the oldest ids past the count."""
        while len(self.entries) > TICK_IDS_MAX:
            self._drop_oldest()

    def forget(self, before: int) -> None:
        """Forget ids of ticks before ``before``, looking at the oldest arrivals only (one
        that arrived out of order waits its turn or the count)."""
        entries = self.entries
        while entries and next(iter(entries.values())) < before:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        key = next(iter(self.entries))
        ts = self.entries.pop(key)
        if self.floor is None or ts > self.floor:
            self.floor = ts


class BarIds:
    """Digests of recent bars' ids -> the bar as last applied, in arrival (sequence) order."""

    __slots__ = ("by_id_alone", "entries", "floor")

    def __init__(self, entries: dict[str, KeptBar] | None = None, floor: int | None = None) -> None:
        self.entries: dict[str, KeptBar] = entries or {}
        self.floor = floor  # bars ending at or before it have forgotten ids
        # Some bars are keyed by their id alone (kept by a state written before bars had
        # values): a bar is then looked up that way too.
        self.by_id_alone = any(isinstance(b, int) for b in self.entries.values())

    def get(self, key: str) -> KeptBar | None:
        return self.entries.get(key)

    def __len__(self) -> int:
        return len(self.entries)

    def expired(self, end: int, horizon: int | None) -> bool:
        """``horizon``: the oldest event time whose ids are kept (None: no watermark yet)."""
        return (horizon is not None and end < horizon) or (
            self.floor is not None and end <= self.floor
        )

    def put(self, key: str, bar: list[float]) -> None:
        """Keep ``bar`` under ``key``, as the newest arrival."""
        self.entries.pop(key, None)
        self.entries[key] = bar

    def remove(self, key: str) -> KeptBar:
        return self.entries.pop(key)

    def overflow(self) -> Iterator[KeptBar]:
        """Forget the oldest bars past the count, yielding each (its candles settle it)."""
        while len(self.entries) > BAR_IDS_MAX:
            yield self._drop_oldest()

    def expire(self, before: int) -> Iterator[KeptBar]:
        """Forget the oldest arrivals ending before ``before``, yielding each."""
        entries = self.entries
        while entries and end_of(next(iter(entries.values()))) < before:
            yield self._drop_oldest()

    def values(self) -> Iterator[list[float]]:
        """The kept bars with values, oldest arrival first."""
        return (b for b in self.entries.values() if not isinstance(b, int))

    def _drop_oldest(self) -> KeptBar:
        key = next(iter(self.entries))
        bar = self.entries.pop(key)
        end = end_of(bar)
        if self.floor is None or end > self.floor:
            self.floor = end
        return bar


def end_of(bar: KeptBar) -> int:
    return bar if isinstance(bar, int) else int(bar[0] + bar[1])
