"""Simple moving average, as ta's SMAIndicator (``rolling(n, min_periods=n).mean()``)."""

from __future__ import annotations

from stockapp.tables.indicators.base import Indicator, Output, Sample


class SMA(Indicator):
    __slots__ = ("n", "window")

    def __init__(self, n: int) -> None:
        self.n = n
        # A list, not a deque: a deque holds a 64-slot block however short its maxlen, and
        # every symbol x interval has these windows in memory.
        self.window: list[float] = []

    def _mean(self, values: list[float]) -> Output:
        return (sum(values) / self.n if len(values) == self.n else None,)

    def add(self, sample: Sample) -> Output:
        window = self.window
        window.append(sample.close)
        if len(window) > self.n:
            del window[0]
        return self._mean(window)

    def peek(self, sample: Sample) -> Output:
        return self._mean(
            [*self.window[1 - self.n :], sample.close] if self.n > 1 else [sample.close]
        )

    def state(self) -> list[float]:
        return list(self.window)

    def restore(self, state: list[float]) -> None:
        self.window = [float(v) for v in state][-self.n :]
