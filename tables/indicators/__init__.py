"""Incremental technical indicators, one per module, equal to the ``ta`` library's.

:class:`IndicatorSet` bundles the set every candle carries, under the names of the streaming
contract (docs/streaming.md).
"""

from __future__ import annotations

from tables.indicators.bollinger import Bollinger
from tables.indicators.ema import EMA
from tables.indicators.macd import MACD
from tables.indicators.rsi import RSI
from tables.indicators.sma import SMA
from tables.indicators.vwap import VWAP

NAMES = (
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "vwap",
)

Values = dict[str, float | None]


class IndicatorSet:
    def __init__(self) -> None:
        self.sma_20 = SMA(20)
        self.sma_50 = SMA(50)
        self.ema_12 = EMA.span(12)
        self.ema_26 = EMA.span(26)
        self.rsi_14 = RSI(14)
        self.macd = MACD(12, 26, 9)
        self.bollinger = Bollinger(20, 2.0)
        self.vwap = VWAP()

    def _parts(self) -> tuple:
        return (
            self.sma_20,
            self.sma_50,
            self.ema_12,
            self.ema_26,
            self.rsi_14,
            self.macd,
            self.bollinger,
        )

    @staticmethod
    def _values(outputs: list, vwap: float | None) -> Values:
        sma20, sma50, ema12, ema26, rsi, (macd, signal, hist), (upper, middle, lower) = outputs
        return {
            "sma_20": sma20,
            "sma_50": sma50,
            "ema_12": ema12,
            "ema_26": ema26,
            "rsi_14": rsi,
            "macd": macd,
            "macd_signal": signal,
            "macd_hist": hist,
            "bb_upper": upper,
            "bb_middle": middle,
            "bb_lower": lower,
            "vwap": vwap,
        }

    def add(self, close: float, session: int, pv: float, volume: float) -> Values:
        """Take a closed candle for good."""
        outputs = [part.add(close) for part in self._parts()]
        return self._values(outputs, self.vwap.add((session, pv, volume)))

    def peek(self, close: float, session: int, pv: float, volume: float) -> Values:
        """The values the forming candle would get if it closed now."""
        outputs = [part.peek(close) for part in self._parts()]
        return self._values(outputs, self.vwap.peek((session, pv, volume)))

    def state(self) -> list:
        return [part.state() for part in (*self._parts(), self.vwap)]

    @classmethod
    def restored(cls, state: list) -> IndicatorSet:
        indicators = cls()
        for part, part_state in zip((*indicators._parts(), indicators.vwap), state, strict=True):
            part.restore(part_state)
        return indicators
