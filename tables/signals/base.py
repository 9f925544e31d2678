"""The incremental rule shape: ``add`` a closed candle, ``peek`` at the forming one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

# One candle as rules see it: open/high/low/close/volume and the indicator outputs by name
# (None while an indicator warms up).
Point = Mapping[str, float | None]


class Rule(ABC):
    __slots__ = ()

    @abstractmethod
    def add(self, point: Point) -> bool:
        """Take a closed candle for good; True if the rule fires on it."""

    @abstractmethod
    def peek(self, point: Point) -> bool:
        """Would the rule fire if the forming candle closed now? Changes nothing."""

    @abstractmethod
    def values(self, point: Point) -> dict[str, float | None]:
        """What a firing on ``point`` reports: the series it compared, before ``add``."""

    @abstractmethod
    def state(self) -> Any: ...

    @abstractmethod
    def restore(self, state: Any) -> None: ...


def value(point: Point, operand: str | float) -> float | None:
    """A series of the point by name, or a constant level."""
    if isinstance(operand, str):
        found = point.get(operand)
        return None if found is None else float(found)
    return float(operand)
