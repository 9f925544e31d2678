"""A close beyond the previous ``lookback`` candles' highest high (up) or lowest low (down);
only once that many candles are there to look back on."""

from __future__ import annotations

from typing import Any

from stockapp.tables.signals.base import Point, Rule, value


class Breakout(Rule):
    __slots__ = ("_level", "extremes", "lookback", "up")

    def __init__(self, lookback: int, up: bool) -> None:
        self.lookback, self.up = lookback, up
        self.extremes: list[float] = []  # the previous candles' highs (up) or lows, oldest first
        # The extreme of ``extremes``, once asked: a closed candle asks for it twice (the
        # values a firing reports, then the firing), and each is a pass over the window.
        self._level: float | None = None

    def level(self) -> float | None:
        """The highest high (up) or lowest low of the window; None until it is full."""
        if self._level is None and len(self.extremes) >= self.lookback:
            self._level = max(self.extremes) if self.up else min(self.extremes)
        return self._level

    def _fires(self, point: Point) -> bool:
        close = value(point, "close")
        level = self.level()
        if close is None or level is None:
            return False
        return close > level if self.up else close < level

    def add(self, point: Point) -> bool:
        fired = self._fires(point)
        extreme = value(point, "high" if self.up else "low")
        if extreme is not None:
            self.extremes.append(extreme)
            if len(self.extremes) > self.lookback:
                del self.extremes[0]
            self._level = None
        return fired

    def peek(self, point: Point) -> bool:
        return self._fires(point)

    def values(self, point: Point) -> dict[str, float | None]:
        """The close and the extreme it broke (None before ``lookback`` candles)."""
        return {"close": value(point, "close"), "level": self.level()}

    def state(self) -> Any:
        return list(self.extremes)

    def restore(self, state: Any) -> None:
        # The same list of floats as ever (states stored before restore as they were); only
        # the window's tail is converted, in C rather than a Python loop.
        self.extremes = list(map(float, state[-self.lookback :]))
        self._level = None
