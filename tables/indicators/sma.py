"""Simple moving average, as ta's SMAIndicator (``rolling(n, min_periods=n).mean()``)."""

from __future__ import annotations

from collections import deque

from stockapp.tables.indicators.base import Indicator, Output, Sample


class SMA(Indicator):
    def __init__(self, n: int) -> None:
        self.n = n
        self.window: deque[float] = deque(maxlen=n)

    def _mean(self, values: list[float]) -> Output:
        return (sum(values) / self.n if len(values) == self.n else None,)

    def add(self, sample: Sample) -> Output:
        self.window.append(sample.close)
        return self._mean(list(self.window))

    def peek(self, sample: Sample) -> Output:
        return self._mean(
            [*list(self.window)[1 - self.n :], sample.close] if self.n > 1 else [sample.close]
        )

    def state(self) -> list[float]:
        return list(self.window)

    def restore(self, state: list[float]) -> None:
        self.window = deque(state, maxlen=self.n)
