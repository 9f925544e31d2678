"""A series crossing another series or a level: ``left`` above ``right`` on this candle and
not (at or below) on the previous one, both defined on both; the mirror image for below."""

from __future__ import annotations

from typing import Any

from stockapp.tables.signals.base import Point, Rule, value


class Crossover(Rule):
    __slots__ = ("above", "left", "previous", "right")

    def __init__(self, left: str, right: str | float, above: bool) -> None:
        self.left, self.right, self.above = left, right, above
        self.previous: tuple[float, float] | None = None  # (left, right) of the last candle

    def _pair(self, point: Point) -> tuple[float, float] | None:
        left, right = value(point, self.left), value(point, self.right)
        return None if left is None or right is None else (left, right)

    def _fires(self, pair: tuple[float, float] | None) -> bool:
        if pair is None or self.previous is None:
            return False
        (was_left, was_right), (left, right) = self.previous, pair
        if self.above:
            return was_left <= was_right and left > right
        return was_left >= was_right and left < right

    def add(self, point: Point) -> bool:
        pair = self._pair(point)
        fired = self._fires(pair)
        self.previous = pair
        return fired

    def peek(self, point: Point) -> bool:
        return self._fires(self._pair(point))

    def values(self, point: Point) -> dict[str, float | None]:
        right = self.right if isinstance(self.right, str) else "level"
        return {self.left: value(point, self.left), right: value(point, self.right)}

    def state(self) -> Any:
        return None if self.previous is None else list(self.previous)

    def restore(self, state: Any) -> None:
        self.previous = None if state is None else (float(state[0]), float(state[1]))
