"""Records that flow through the pipeline (the contract is in docs/streaming.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stockapp.tables.candle import Bar


@dataclass(slots=True)
class Quote:
    """A validated quote. A bar (from intraday APIs or CSV) also has open/high/low/bar_seconds
    and its ``price`` is the bar's close."""

    symbol: str
    ts: int  # event time, epoch ms
    price: float
    volume: float
    bid: float | None = None
    ask: float | None = None
    source: str | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    bar_seconds: int | None = None
    # Names the quote at its source, so a repeat (a resend, a poller that restarted) can be
    # told from a new quote with the same values. A bar's is its start and length.
    id: str | None = None
    # A trade the tape's rules keep out of the last sale, high and low (an average-price or an
    # out-of-sequence print): it counts in volume only (tables/candle.py, docs/sources.md).
    volume_only: bool = False

    @property
    def is_bar(self) -> bool:
        return self.bar_seconds is not None

    def bar(self) -> Bar:
        """What this quote adds to a candle."""
        if self.bar_seconds is None:
            return Bar.tick(self.ts, self.price, self.volume, not self.volume_only)
        # A bar has all four (stockapp/validation.py refuses a record with only some of them).
        assert self.open is not None and self.high is not None and self.low is not None
        return Bar.ohlc(
            self.ts, self.open, self.high, self.low, self.price, self.volume, self.bar_seconds
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "symbol": self.symbol,
            "ts": self.ts,
            "price": self.price,
            "volume": self.volume,
        }
        for name in ("bid", "ask", "source", "open", "high", "low", "bar_seconds", "id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.volume_only:
            data["volume_only"] = True
        return data


@dataclass(frozen=True, slots=True)
class QuoteRow:
    """A quote as stored in Cassandra: keyed by where it was read (idempotent replays)."""

    quote: Quote
    partition: int
    offset: int
    index: int = 0  # the quote's place in a packed record (0 for a record of one quote)
    session: str | None = None  # its trading session (tables/sessions.py), as stored
