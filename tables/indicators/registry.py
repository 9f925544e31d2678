"""Which indicators exist: each kind once (its class, parameters, output names, label, where it
is drawn), how a configured set is read (``STOCKAPP_INDICATORS``, :func:`parse_indicators`),
and the default set. Everything else that lists indicators (the state, the Cassandra sink and
schema, the API, the chart, the rules, the batch formulas in :mod:`stockapp.history`) iterates
over the configured set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from stockapp.tables.indicators.base import Indicator
from stockapp.tables.indicators.bollinger import Bollinger
from stockapp.tables.indicators.ema import EMA
from stockapp.tables.indicators.macd import MACD
from stockapp.tables.indicators.rsi import RSI
from stockapp.tables.indicators.sma import SMA
from stockapp.tables.indicators.vwap import VWAP

Params = tuple[int | float, ...]


# Windows longer than this would hold that many closes per symbol and interval in memory
# (SMA, Bollinger) and take as many candles to warm up.
MAX_WINDOW = 1000
# Outputs a candle carries at most: each is a Cassandra column and a field of every message.
MAX_OUTPUTS = 64


def _text(params: Params) -> str:
    # Outputs are Cassandra column names: "2.5" is written "2p5".
    return "_".join(format(p, "g").replace(".", "p") for p in params)


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int (a window, in candles) or float (a multiplier)
    low: float
    high: float

    def read(self, text: str) -> int | float:
        try:
            value: int | float = int(text) if self.kind is int else float(text)
        except ValueError:
            value = math.nan
        if not (self.low <= value <= self.high) or (
            self.kind is float and round(value, 3) != value
        ):
            what = "a whole number" if self.kind is int else "a number with at most 3 decimals"
            raise ValueError(f"{self.name} {text!r} is not {what} in {self.low:g}..{self.high:g}")
        return value


def _window(name: str = "window", low: int = 1) -> Param:
    return Param(name, int, low, MAX_WINDOW)


@dataclass(frozen=True)
class Kind:
    name: str
    factory: Callable[..., Indicator]
    parts: tuple[str, ...]  # output names of a multi-output kind ("" for the single output)
    title: str
    pane: str  # "price": drawn over the candles; otherwise a pane of its own
    params: tuple[Param, ...] = ()
    classic: Params = ()  # parameters whose outputs keep the bare names (macd, bb_upper, ...)
    default: Params | None = None  # what "rsi" alone means; None: parameters are required

    def outputs(self, params: Params) -> tuple[str, ...]:
        if self.parts == ("",):
            return ("_".join(filter(None, (self.name, _text(params)))),)
        suffix = "" if params == self.classic else "_" + _text(params)
        return tuple(f"{part}{suffix}" for part in self.parts)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("sma", SMA, ("",), "SMA", "price", (_window(),)),
        Kind("ema", EMA, ("",), "EMA", "price", (_window(),)),
        Kind(
            "bb",
            Bollinger,
            ("bb_upper", "bb_middle", "bb_lower"),
            "Bollinger",
            "price",
            (_window(), Param("deviations", float, 0.1, 10)),
            classic=(20, 2),
            default=(20, 2),
        ),
        Kind("vwap", VWAP, ("",), "VWAP", "price", default=()),
        Kind("rsi", RSI, ("",), "RSI", "rsi", (_window(),), default=(14,)),
        Kind(
            "macd",
            MACD,
            ("macd", "macd_signal", "macd_hist"),
            "MACD",
            "macd",
            (_window("fast"), _window("slow", 2), _window("signal")),
            classic=(12, 26, 9),
            default=(12, 26, 9),
        ),
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
    def spec(self) -> str:
        """The indicator as STOCKAPP_INDICATORS writes it."""
        return ":".join([self.kind, *(format(p, "g") for p in self.params)])

    @property
    def label(self) -> str:
        title = KINDS[self.kind].title
        return f"{title} {' '.join(format(p, 'g') for p in self.params)}".strip()

    @property
    def pane(self) -> str:
        return KINDS[self.kind].pane

    def make(self) -> Indicator:
        return KINDS[self.kind].factory(*self.params)

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "params": list(self.params),
            "label": self.label,
            "pane": self.pane,
            "outputs": list(self.outputs),
        }


# STOCKAPP_INDICATORS' default, in the setting's form (DEFAULT_SET below is it read).
DEFAULT_SPEC: tuple[str, ...] = (
    "sma:20",
    "sma:50",
    "ema:12",
    "ema:26",
    "rsi:14",
    "macd:12:26:9",
    "bb:20:2",
    "vwap",
)


def outputs_of(defs: Iterable[IndicatorDef]) -> tuple[str, ...]:
    """The value names a candle carries, in order (Cassandra columns, the API, the candles
    topic, the series rules may name)."""
    return tuple(name for d in defs for name in d.outputs)


def parse_indicator(text: str) -> IndicatorDef:
    """``kind[:param[:param...]]``, e.g. ``sma:200``, ``macd:12:26:9``, ``bb:20:2.5``,
    ``vwap``; ``rsi``, ``macd`` and ``bb`` alone take their usual parameters. Raises
    ValueError saying what is wrong."""
    name, *raw = text.strip().lower().split(":")
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"{text!r}: {name!r} is not an indicator (one of {', '.join(KINDS)})")
    if not raw and kind.default is not None:
        return IndicatorDef(name, kind.default)
    if len(raw) != len(kind.params):
        wanted = ":".join(p.name for p in kind.params)
        form = f"{name}:{wanted}" if wanted else name
        raise ValueError(f"{text!r}: {name} is written {form}")
    try:
        params = tuple(p.read(r.strip()) for p, r in zip(kind.params, raw, strict=True))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if name == "macd" and not params[0] < params[1]:
        raise ValueError(f"{text!r}: the fast window must be shorter than the slow one")
    return IndicatorDef(name, params)


@cache
def parse_indicators(texts: tuple[str, ...]) -> tuple[IndicatorDef, ...]:
    """A configured set, in order; ValueError for a bad item, a repeated indicator or one
    whose outputs another already has, or too many outputs."""
    defs = tuple(parse_indicator(t) for t in texts if t.strip())
    if not defs:
        raise ValueError("names no indicator")
    seen: dict[str, IndicatorDef] = {}
    for d in defs:
        for output in d.outputs:
            other = seen.setdefault(output, d)
            if other is not d:
                raise ValueError(f"{d.spec} and {other.spec} both give {output!r}")
    if len(seen) > MAX_OUTPUTS:
        raise ValueError(f"gives {len(seen)} values per candle, more than {MAX_OUTPUTS}")
    return defs


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


# The default set (STOCKAPP_INDICATORS unset), and its outputs.
DEFAULT_SET: tuple[IndicatorDef, ...] = parse_indicators(DEFAULT_SPEC)
NAMES: tuple[str, ...] = outputs_of(DEFAULT_SET)
