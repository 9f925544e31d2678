"""A series entering or leaving a zone beyond a level (``rsi_14`` enters above 70, leaves
below 30): the crossing of the zone's edge, one way or the other."""

from __future__ import annotations

from typing import Any

from stockapp.tables.signals.base import Point, Rule, value


class Threshold(Rule):
    __slots__ = ("level", "previous", "series", "upper", "entering")

    def __init__(self, series: str, level: float, upper: bool, entering: bool) -> None:
        # upper: the zone above the level (else below); entering: into it (else out of it).
        self.series, self.level, self.upper, self.entering = series, level, upper, entering
        self.previous: float | None = None

    def _inside(self, x: float) -> bool:
        return x > self.level if self.upper else x < self.level

    def _fires(self, current: float | None) -> bool:
        if current is None or self.previous is None:
            return False
        was, now = self._inside(self.previous), self._inside(current)
        return (not was and now) if self.entering else (was and not now)

    def add(self, point: Point) -> bool:
        current = value(point, self.series)
        fired = self._fires(current)
        self.previous = current
        return fired

    def peek(self, point: Point) -> bool:
        return self._fires(value(point, self.series))

    def values(self, point: Point) -> dict[str, float | None]:
        return {self.series: value(point, self.series), "level": self.level}

    def state(self) -> Any:
        return self.previous

    def restore(self, state: Any) -> None:
        self.previous = None if state is None else float(state)
