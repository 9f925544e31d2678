"""The incremental indicator shape shared by every module here.

``add(x)`` takes the next input for good (a closed candle) and returns the output;
``peek(x)`` returns what ``add(x)`` would return without changing anything (the forming candle,
"as if it closed now"). State is small and bounded, and round-trips through ``state()`` /
``restore()`` as JSON-safe values so it can live in a Faust table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Indicator(ABC):
    @abstractmethod
    def add(self, value: float) -> Any: ...

    @abstractmethod
    def peek(self, value: float) -> Any: ...

    @abstractmethod
    def state(self) -> Any: ...

    @abstractmethod
    def restore(self, state: Any) -> None: ...
