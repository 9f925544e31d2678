"""Exponential moving average, as pandas ``ewm(adjust=False, min_periods=n).mean()``.

Seeded with the first input; no output for the first ``min_periods - 1`` inputs. ``Ewm.span(n)``
is ta's EMAIndicator (alpha = 2/(n+1)), ``Ewm.wilder(n)`` the smoothing inside RSI
(alpha = 1/n); :class:`EMA` is the indicator over closes.
"""

from __future__ import annotations

from typing import Any

from stockapp.tables.indicators.base import Indicator, Output, Sample


class Ewm:
    """The recursion itself, over plain numbers (RSI and MACD feed it derived series)."""

    __slots__ = ("alpha", "min_periods", "count", "value")

    def __init__(self, alpha: float, min_periods: int) -> None:
        self.alpha = alpha
        self.min_periods = min_periods
        self.count = 0
        self.value: float | None = None

    @classmethod
    def span(cls, n: int) -> Ewm:
        return cls(2.0 / (n + 1.0), n)

    @classmethod
    def wilder(cls, n: int) -> Ewm:
        return cls(1.0 / n, n)

    def _next(self, x: float) -> float:
        if self.value is None:
            return x
        # pandas' own recursion, including its normalisation by (old_wt + new_wt), which is
        # not always exactly 1.0 in floating point.
        old_wt = 1.0 - self.alpha
        return (old_wt * self.value + self.alpha * x) / (old_wt + self.alpha)

    def add(self, x: float) -> float | None:
        self.value = self._next(x)
        self.count += 1
        return self.value if self.count >= self.min_periods else None

    def peek(self, x: float) -> float | None:
        return self._next(x) if self.count + 1 >= self.min_periods else None

    def state(self) -> list[Any]:
        return [self.count, self.value]

    def restore(self, state: list[Any]) -> None:
        self.count, self.value = state


class EMA(Indicator):
    __slots__ = ("ewm",)

    def __init__(self, n: int) -> None:
        self.ewm = Ewm.span(n)

    def add(self, sample: Sample) -> Output:
        return (self.ewm.add(sample.close),)

    def peek(self, sample: Sample) -> Output:
        return (self.ewm.peek(sample.close),)

    def state(self) -> list[Any]:
        return self.ewm.state()

    def restore(self, state: list[Any]) -> None:
        self.ewm.restore(state)
