"""What the processor reads from the quotes topic and what it forwards to the side topics."""

from __future__ import annotations

from dataclasses import dataclass

from stockapp.validation import Reason


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    # The consumer group generation the record was fetched in (None: not tracked). A record
    # fetched before a rebalance is not applied after it: see QuoteProcessor.process.
    generation: int | None = None


@dataclass(frozen=True, slots=True)
class SideOutput:
    """A record for a side topic: a dead letter (``kind`` says why, as the metric's label) or
    a late record (``kind`` None). For one element of a packed record, ``element`` holds its
    index and JSON, forwarded in place of the whole record."""

    topic: str
    record: RawRecord
    reason: str
    kind: Reason | None = None
    element: tuple[int, bytes] | None = None
