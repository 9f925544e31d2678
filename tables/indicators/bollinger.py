"""Bollinger bands, as ta's BollingerBands: rolling mean +/- k population std (ddof=0).
Outputs: upper, middle, lower."""

from __future__ import annotations

import math
from collections import deque

from stockapp.tables.indicators.base import Indicator, Output, Sample


class Bollinger(Indicator):
    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.n = n
        self.k = k
        self.window: deque[float] = deque(maxlen=n)

    def _bands(self, values: list[float]) -> Output:
        if len(values) < self.n:
            return None, None, None
        mean = sum(values) / self.n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / self.n)
        return mean + self.k * std, mean, mean - self.k * std

    def add(self, sample: Sample) -> Output:
        self.window.append(sample.close)
        return self._bands(list(self.window))

    def peek(self, sample: Sample) -> Output:
        x = sample.close
        return self._bands([*list(self.window)[1 - self.n :], x] if self.n > 1 else [x])

    def state(self) -> list[float]:
        return list(self.window)

    def restore(self, state: list[float]) -> None:
        self.window = deque(state, maxlen=self.n)
