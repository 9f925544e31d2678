"""Session VWAP: cumulative price x volume over cumulative volume since the session began.

Unlike the others it reads a candle's price x volume sum and volume, not its close; a session
is a market day, and the accumulator restarts when a candle belongs to a new session.
"""

from __future__ import annotations

from typing import Any

from stockapp.tables.indicators.base import Indicator, Output, Sample


class VWAP(Indicator):
    __slots__ = ("session", "pv", "volume")

    def __init__(self) -> None:
        self.session: int | None = None
        self.pv = 0.0
        self.volume = 0.0

    def _totals(self, sample: Sample) -> tuple[float, float]:
        if sample.session != self.session:
            return sample.pv, sample.volume
        return self.pv + sample.pv, self.volume + sample.volume

    @staticmethod
    def _vwap(pv: float, volume: float) -> Output:
        return (pv / volume if volume > 0 else None,)

    def add(self, sample: Sample) -> Output:
        self.pv, self.volume = self._totals(sample)
        self.session = sample.session
        return self._vwap(self.pv, self.volume)

    def peek(self, sample: Sample) -> Output:
        return self._vwap(*self._totals(sample))

    def state(self) -> list[Any]:
        return [self.session, self.pv, self.volume]

    def restore(self, state: list[Any]) -> None:
        self.session, self.pv, self.volume = state
