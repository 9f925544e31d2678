"""The incremental indicator shape shared by every module here (after talipp's).

Every indicator takes the same input, a :class:`Sample` (one candle as indicators see it), and
returns a tuple of outputs named by its registry entry. ``add(s)`` takes the next closed candle
for good; ``peek(s)`` returns what ``add(s)`` would return without changing anything (the
forming candle, "as if it closed now"). State is small and bounded, and round-trips through
``state()`` / ``restore()`` as JSON-safe values so it can live in a Faust table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

Output = tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    close: float
    pv: float  # sum of price x volume over the candle
    volume: float
    session: int  # start of the candle's market day, epoch ms (VWAP restarts there)


class Indicator(ABC):
    # Thousands of symbols x intervals x indicators live in memory: no per-instance dict.
    __slots__ = ()

    @abstractmethod
    def add(self, sample: Sample) -> Output: ...

    @abstractmethod
    def peek(self, sample: Sample) -> Output: ...

    @abstractmethod
    def state(self) -> Any: ...

    @abstractmethod
    def restore(self, state: Any) -> None: ...
