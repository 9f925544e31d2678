"""Bollinger bands, as ta's BollingerBands: rolling mean +/- k population std (ddof=0).
Outputs: upper, middle, lower."""

from __future__ import annotations

import math

from stockapp.tables.indicators.base import Indicator, Output, Sample


class Bollinger(Indicator):
    __slots__ = ("n", "k", "window")

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.n = n
        self.k = k
        # A list, not a deque: a deque holds a 64-slot block however short its maxlen, and
        # every symbol x interval has these windows in memory.
        self.window: list[float] = []

    def _bands(self, values: list[float]) -> Output:
        if len(values) < self.n:
            return None, None, None
        mean = sum(values) / self.n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / self.n)
        return mean + self.k * std, mean, mean - self.k * std

    def add(self, sample: Sample) -> Output:
        window = self.window
        window.append(sample.close)
        if len(window) > self.n:
            del window[0]
        return self._bands(window)

    def peek(self, sample: Sample) -> Output:
        x = sample.close
        return self._bands([*self.window[1 - self.n :], x] if self.n > 1 else [x])

    def state(self) -> list[float]:
        return list(self.window)

    def restore(self, state: list[float]) -> None:
        self.window = [float(v) for v in state][-self.n :]
