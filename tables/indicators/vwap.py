"""Session VWAP: cumulative price x volume over cumulative volume since the session began.

Its inputs are whole candles (their price x volume sum and volume), not closes, and a session
is a market day: the accumulator restarts when a candle belongs to a new session.
"""

from __future__ import annotations

from tables.indicators.base import Indicator

Input = tuple[int, float, float]  # session start (epoch ms), price x volume, volume


class VWAP(Indicator):
    def __init__(self) -> None:
        self.session: int | None = None
        self.pv = 0.0
        self.volume = 0.0

    def _totals(self, item: Input) -> tuple[float, float]:
        session, pv, volume = item
        if session != self.session:
            return pv, volume
        return self.pv + pv, self.volume + volume

    @staticmethod
    def _vwap(pv: float, volume: float) -> float | None:
        return pv / volume if volume > 0 else None

    def add(self, item: Input) -> float | None:  # type: ignore[override]
        self.pv, self.volume = self._totals(item)
        self.session = item[0]
        return self._vwap(self.pv, self.volume)

    def peek(self, item: Input) -> float | None:  # type: ignore[override]
        return self._vwap(*self._totals(item))

    def state(self) -> list:
        return [self.session, self.pv, self.volume]

    def restore(self, state: list) -> None:
        self.session, self.pv, self.volume = state
