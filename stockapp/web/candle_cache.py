"""Closed candles a worker has served or closed, kept for ``/api/candles``.

A closed candle never changes once stored, and the worker that owns a symbol's partition
closes every candle of it, in order. So after one read of a range from Cassandra, a worker
knows every stored closed candle of that range, and each candle it closes afterwards extends
what it knows: later requests are answered from memory, without a query and without turning
rows into JSON again (most of a request's time: docs/performance.md, "Latency").

What it holds, per (symbol, interval), is a *span*: every stored closed candle from ``lo`` on,
each as its encoded JSON object (after the read, every later one is closed here): a request
it answers joins bytes, where encoding 5,000 candle objects took most of a request's time.
Only a worker that owns the symbol's partition caches it. Bounded in bytes
(``STOCKAPP_CANDLE_CACHE_BYTES``, the memory its encoded candles take, least recently used
spans dropped first). Dropped whole at each rebalance (a symbol whose partition moved away
and back has candles closed elsewhere in between), and a span read from Cassandra is read
again after ``STOCKAPP_CANDLE_CACHE_SECONDS``, which bounds how long candles written by
another process (``stockapp backfill`` into a range already served) stay unseen.
"""

from __future__ import annotations

import bisect
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockapp.tables.candle import Candle
from stockapp.web.payload import candle_json, encode_candle, session_of

__all__ = ["CandleCache", "Encoded"]

Key = tuple[str, str]  # (symbol, interval)


# What a span's lists add per candle: a slot in each of three lists, the start's int and
# the size's int.
PER_CANDLE_OVERHEAD = 3 * 8 + 32 + 28


def footprint(encoded: bytes) -> int:
    """The memory an encoded candle takes here, with its place in the span's lists."""
    return sys.getsizeof(encoded) + PER_CANDLE_OVERHEAD


@dataclass(frozen=True, slots=True)
class Encoded:
    """Closed candles as the API sends them, ascending: each one's start (ms) and its encoded
    JSON object (``payload.encode_candle``)."""

    starts: list[int]
    parts: list[bytes]

    @classmethod
    def of(cls, candles: Sequence[dict[str, Any]]) -> Encoded:
        return cls([c["t"] * 1000 for c in candles], [encode_candle(c) for c in candles])


@dataclass(slots=True)
class Span:
    lo: int  # every stored closed candle with lo <= start is in ``starts``
    read_at: float  # monotonic clock of the Cassandra read it came from
    starts: list[int] = field(default_factory=list)  # ascending, ms
    candles: list[bytes] = field(default_factory=list)  # encoded, as ``starts``
    sizes: list[int] = field(default_factory=list)  # bytes of each candle (``footprint``)
    total: int = 0  # bytes of its candles

    def put(self, start: int, candle: bytes) -> int:
        """Insert or replace the candle starting at ``start``; returns the change in bytes."""
        size = footprint(candle)
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start:
            delta = size - self.sizes[i]
            self.candles[i], self.sizes[i] = candle, size
        else:
            self.starts.insert(i, start)
            self.candles.insert(i, candle)
            self.sizes.insert(i, size)
            delta = size
        self.total += delta
        return delta


class CandleCache:
    def __init__(
        self,
        max_bytes: int,
        max_age_s: float,
        outputs: tuple[str, ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.outputs = outputs  # the indicator columns a stored candle has
        self.clock = clock
        self.spans: OrderedDict[Key, Span] = OrderedDict()  # least recently used first
        self.bytes = 0
        # Closes seen per key, and rebalances: a read that saw either move while it ran is
        # not cached (a candle closed during it may be missing from its rows).
        self.closes: dict[Key, int] = {}
        self.epoch = 0
        self.hits = 0
        self.misses = 0

    def version(self, key: Key) -> tuple[int, int]:
        return self.epoch, self.closes.get(key, 0)

    def get(self, key: Key, start: int, end: int, limit: int) -> Encoded | None:
        """The latest ``limit`` stored closed candles with start in ``[start, end)``,
        ascending; None when the span does not know them all."""
        span = self.spans.get(key)
        if span is None or self.clock() - span.read_at > self.max_age_s:
            self.misses += 1
            return None
        last = bisect.bisect_left(span.starts, end)
        first = bisect.bisect_left(span.starts, max(start, span.lo))
        if last - first < limit and start < span.lo:
            self.misses += 1  # older candles than the span knows are asked for
            return None
        self.spans.move_to_end(key)
        self.hits += 1
        first = max(first, last - limit)
        return Encoded(span.starts[first:last], span.candles[first:last])

    def fill(
        self,
        key: Key,
        start: int,
        limit: int,
        candles: Encoded,
        version: tuple[int, int],
    ) -> None:
        """What a read of Cassandra returned from ``start`` to the symbol's last tick: the
        latest ``limit`` closed candles, ascending. ``version``: :meth:`version` before the
        read began."""
        if self.max_bytes <= 0 or self.version(key) != version:
            return
        # Everything from start is known, or from the oldest candle returned when the limit cut.
        lo = start if len(candles.starts) < limit else candles.starts[0]
        span = Span(lo, self.clock())
        for candle_start, candle in zip(candles.starts, candles.parts, strict=True):
            span.put(candle_start, candle)
        old = self.spans.pop(key, None)
        if old is not None:
            self.bytes -= old.total
        if span.total > self.max_bytes:
            return
        self.spans[key] = span
        self.bytes += span.total
        self._shrink()

    def on_stored(self, closed: Sequence[Candle]) -> None:
        """Candles this worker closed, just acknowledged by Cassandra: added to the spans that
        reach them (before anything else reads Cassandra again, so the cache never lags it)."""
        for candle in closed:
            key = (candle.symbol, candle.interval)
            self.closes[key] = self.closes.get(key, 0) + 1
            span = self.spans.get(key)
            if span is None or candle.start < span.lo:
                continue
            json = candle_json(
                candle.start,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
                candle.closed,
                {name: candle.indicators.get(name) for name in self.outputs},
                session_of(candle.interval, candle.start),
            )
            self.bytes += span.put(candle.start, encode_candle(json))
        if closed:
            self._shrink()

    def clear(self) -> None:
        """Partitions moved: what this worker knows may have changed elsewhere."""
        self.spans.clear()
        self.closes.clear()
        self.bytes = 0
        self.epoch += 1

    def _shrink(self) -> None:
        while self.bytes > self.max_bytes and self.spans:
            _, span = self.spans.popitem(last=False)
            self.bytes -= span.total
