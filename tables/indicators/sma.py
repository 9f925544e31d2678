"""Simple moving average, as ta's SMAIndicator (``rolling(n, min_periods=n).mean()``)."""

from __future__ import annotations

from collections import deque

from tables.indicators.base import Indicator


class SMA(Indicator):
    def __init__(self, n: int) -> None:
        self.n = n
        self.window: deque[float] = deque(maxlen=n)

    def _mean(self, values: list[float]) -> float | None:
        return sum(values) / self.n if len(values) == self.n else None

    def add(self, x: float) -> float | None:
        self.window.append(x)
        return self._mean(list(self.window))

    def peek(self, x: float) -> float | None:
        return self._mean([*list(self.window)[1 - self.n :], x] if self.n > 1 else [x])

    def state(self) -> list[float]:
        return list(self.window)

    def restore(self, state: list[float]) -> None:
        self.window = deque(state, maxlen=self.n)
