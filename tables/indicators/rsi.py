"""Relative strength index, as ta's RSIIndicator.

ta takes ``close.diff()`` and replaces the first (missing) change by 0, so the first close
contributes a zero gain and a zero loss to Wilder's averages and counts toward the warm-up:
the first value appears at the n-th close. Where the average loss is 0, RSI is 100.
"""

from __future__ import annotations

from tables.indicators.base import Indicator
from tables.indicators.ema import EMA


class RSI(Indicator):
    def __init__(self, n: int = 14) -> None:
        self.up = EMA.wilder(n)
        self.down = EMA.wilder(n)
        self.prev: float | None = None

    def _moves(self, x: float) -> tuple[float, float]:
        change = 0.0 if self.prev is None else x - self.prev
        return (change if change > 0 else 0.0), (-change if change < 0 else 0.0)

    @staticmethod
    def _rsi(up: float | None, down: float | None) -> float | None:
        if up is None or down is None:
            return None
        if down == 0:
            return 100.0
        return 100.0 - 100.0 / (1.0 + up / down)

    def add(self, x: float) -> float | None:
        gain, loss = self._moves(x)
        self.prev = x
        return self._rsi(self.up.add(gain), self.down.add(loss))

    def peek(self, x: float) -> float | None:
        gain, loss = self._moves(x)
        return self._rsi(self.up.peek(gain), self.down.peek(loss))

    def state(self) -> list:
        return [self.prev, self.up.state(), self.down.state()]

    def restore(self, state: list) -> None:
        self.prev = state[0]
        self.up.restore(state[1])
        self.down.restore(state[2])
