"""MACD, as ta's MACD: EMA(fast) - EMA(slow), its EMA(signal), and their difference.
Outputs: macd, signal, histogram.

The signal line starts at the first defined MACD value (pandas' ewm skips leading NaNs), so it
needs ``slow + signal - 1`` closes before it appears.
"""

from __future__ import annotations

from typing import Any

from stockapp.tables.indicators.base import Indicator, Output, Sample
from stockapp.tables.indicators.ema import Ewm


class MACD(Indicator):
    __slots__ = ("fast", "slow", "signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast = Ewm.span(fast)
        self.slow = Ewm.span(slow)
        self.signal = Ewm.span(signal)

    @staticmethod
    def _lines(macd: float | None, signal: float | None) -> Output:
        hist = None if macd is None or signal is None else macd - signal
        return macd, signal, hist

    def add(self, sample: Sample) -> Output:
        fast, slow = self.fast.add(sample.close), self.slow.add(sample.close)
        macd = None if fast is None or slow is None else fast - slow
        signal = None if macd is None else self.signal.add(macd)
        return self._lines(macd, signal)

    def peek(self, sample: Sample) -> Output:
        fast, slow = self.fast.peek(sample.close), self.slow.peek(sample.close)
        macd = None if fast is None or slow is None else fast - slow
        signal = None if macd is None else self.signal.peek(macd)
        return self._lines(macd, signal)

    def state(self) -> list[Any]:
        return [self.fast.state(), self.slow.state(), self.signal.state()]

    def restore(self, state: list[Any]) -> None:
        self.fast.restore(state[0])
        self.slow.restore(state[1])
        self.signal.restore(state[2])
