"""Which indicators exist: each kind once (its class, output names, label, where it is drawn),
and the set every candle carries. Everything else that lists indicators (the state, the
Cassandra sink, the API, the chart, the batch formulas in :mod:`stockapp.history`) iterates
over this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stockapp.tables.indicators.base import Indicator
from stockapp.tables.indicators.bollinger import Bollinger
from stockapp.tables.indicators.ema import EMA
from stockapp.tables.indicators.macd import MACD
from stockapp.tables.indicators.rsi import RSI
from stockapp.tables.indicators.sma import SMA
from stockapp.tables.indicators.vwap import VWAP

Params = tuple[int | float, ...]


def _text(params: Params) -> str:
    return "_".join(format(p, "g") for p in params)


@dataclass(frozen=True)
class Kind:
    name: str
    factory: Callable[..., Indicator]
    parts: tuple[str, ...]  # output names of a multi-output kind ("" for the single output)
    title: str
    pane: str  # "price": drawn over the candles; otherwise a pane of its own
    classic: Params = ()  # parameters whose outputs keep the bare names (macd, bb_upper, ...)

    def outputs(self, params: Params) -> tuple[str, ...]:
        if self.parts == ("",):
            return ("_".join(filter(None, (self.name, _text(params)))),)
        suffix = "" if params == self.classic else "_" + _text(params)
        return tuple(f"{part}{suffix}" for part in self.parts)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("sma", SMA, ("",), "SMA", "price"),
        Kind("ema", EMA, ("",), "EMA", "price"),
        Kind("bb", Bollinger, ("bb_upper", "bb_middle", "bb_lower"), "Bollinger", "price", (20, 2)),
        Kind("vwap", VWAP, ("",), "VWAP", "price"),
        Kind("rsi", RSI, ("",), "RSI", "rsi"),
        Kind("macd", MACD, ("macd", "macd_signal", "macd_hist"), "MACD", "macd", (12, 26, 9)),
    )
}


@dataclass(frozen=True)
class IndicatorDef:
    """One configured indicator: a kind and its parameters."""

    kind: str
    params: Params = ()

    @property
    def key(self) -> str:
        """Names its state: another kind or other parameters are another indicator."""
        return "_".join(filter(None, (self.kind, _text(self.params))))

    @property
    def outputs(self) -> tuple[str, ...]:
        return KINDS[self.kind].outputs(self.params)

    @property
    def label(self) -> str:
        title = KINDS[self.kind].title
        return f"{title} {' '.join(format(p, 'g') for p in self.params)}".strip()

    @property
    def pane(self) -> str:
        return KINDS[self.kind].pane

    def make(self) -> Indicator:
        return KINDS[self.kind].factory(*self.params)

    def describe(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "params": list(self.params),
            "label": self.label,
            "pane": self.pane,
            "outputs": list(self.outputs),
        }


DEFAULT_SET: tuple[IndicatorDef, ...] = (
    IndicatorDef("sma", (20,)),
    IndicatorDef("sma", (50,)),
    IndicatorDef("ema", (12,)),
    IndicatorDef("ema", (26,)),
    IndicatorDef("rsi", (14,)),
    IndicatorDef("macd", (12, 26, 9)),
    IndicatorDef("bb", (20, 2)),
    IndicatorDef("vwap"),
)

# The value names a candle carries, in order (Cassandra columns, the API, the candles topic).
NAMES: tuple[str, ...] = tuple(name for d in DEFAULT_SET for name in d.outputs)

# Before indicator state was keyed by name it was a list in this order; such states (in
# changelogs and backfill seeds written by stockapp 0.1) still load.
POSITIONAL_STATE_KEYS = (
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd_12_26_9",
    "bb_20_2",
    "vwap",
)
