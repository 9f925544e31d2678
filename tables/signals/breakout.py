"""A close beyond the previous ``lookback`` candles' highest high (up) or lowest low (down);
only once that many candles are there to look back on."""

from __future__ import annotations

from typing import Any

from stockapp.tables.signals.base import Point, Rule, value


class Breakout(Rule):
    __slots__ = ("extremes", "lookback", "up")

    def __init__(self, lookback: int, up: bool) -> None:
        self.lookback, self.up = lookback, up
        self.extremes: list[float] = []  # the previous candles' highs (up) or lows, oldest first

    def _fires(self, point: Point) -> bool:
        close = value(point, "close")
        if close is None or len(self.extremes) < self.lookback:
            return False
        return close > max(self.extremes) if self.up else close < min(self.extremes)

    def add(self, point: Point) -> bool:
        fired = self._fires(point)
        extreme = value(point, "high" if self.up else "low")
        if extreme is not None:
            self.extremes.append(extreme)
            if len(self.extremes) > self.lookback:
                del self.extremes[0]
        return fired

    def peek(self, point: Point) -> bool:
        return self._fires(point)

    def values(self, point: Point) -> dict[str, float | None]:
        """The close and the extreme it broke (None before ``lookback`` candles)."""
        level = None
        if len(self.extremes) >= self.lookback:
            level = max(self.extremes) if self.up else min(self.extremes)
        return {"close": value(point, "close"), "level": level}

    def state(self) -> Any:
        return list(self.extremes)

    def restore(self, state: Any) -> None:
        self.extremes = [float(v) for v in state][-self.lookback :]
