"""Relative strength index, as ta's RSIIndicator.

ta takes ``close.diff()`` and replaces the first (missing) change by 0, so the first close
contributes a zero gain and a zero loss to Wilder's averages and counts toward the warm-up:
the first value appears at the n-th close. Where the average loss is 0, RSI is 100.
"""

from __future__ import annotations

from typing import Any

from stockapp.tables.indicators.base import Indicator, Output, Sample
from stockapp.tables.indicators.ema import Ewm


class RSI(Indicator):
    __slots__ = ("up", "down", "prev")

    def __init__(self, n: int = 14) -> None:
        self.up = Ewm.wilder(n)
        self.down = Ewm.wilder(n)
        self.prev: float | None = None

    def _moves(self, x: float) -> tuple[float, float]:
        change = 0.0 if self.prev is None else x - self.prev
        return (change if change > 0 else 0.0), (-change if change < 0 else 0.0)

    @staticmethod
    def _rsi(up: float | None, down: float | None) -> Output:
        if up is None or down is None:
            return (None,)
        if down == 0:
            return (100.0,)
        return (100.0 - 100.0 / (1.0 + up / down),)

    def add(self, sample: Sample) -> Output:
        gain, loss = self._moves(sample.close)
        self.prev = sample.close
        return self._rsi(self.up.add(gain), self.down.add(loss))

    def peek(self, sample: Sample) -> Output:
        gain, loss = self._moves(sample.close)
        return self._rsi(self.up.peek(gain), self.down.peek(loss))

    def state(self) -> list[Any]:
        return [self.prev, self.up.state(), self.down.state()]

    def restore(self, state: list[Any]) -> None:
        self.prev = state[0]
        self.up.restore(state[1])
        self.down.restore(state[2])
