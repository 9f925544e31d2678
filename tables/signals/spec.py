"""Rules in their JSON form: reading, validating (errors a person can act on) and building.

    {"name": "golden_cross", "kind": "crosses_above", "left": "sma_20", "right": "sma_50",
     "interval": "5m", "symbols": "*"}
    {"name": "rsi_hot", "kind": "enters_above", "series": "rsi_14", "level": 70,
     "interval": "1m", "symbols": ["AAPL", "MSFT"]}
    {"name": "new_high", "kind": "breakout_up", "lookback": 20, "interval": "15m"}

Kinds: ``crosses_above`` / ``crosses_below`` (``left`` and ``right``: series names, or a
number for ``right``: a level); ``enters_above`` / ``leaves_above`` / ``enters_below`` /
``leaves_below`` (``series``, ``level``); ``breakout_up`` / ``breakout_down`` (``lookback``
candles). Series: ``open``, ``high``, ``low``, ``close``, ``volume`` and the indicator outputs.
``symbols``: ``"*"`` (the default) or a list. ``provisional``: also evaluate the forming candle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stockapp.tables.indicators.registry import NAMES
from stockapp.tables.signals.base import Rule
from stockapp.tables.signals.breakout import Breakout
from stockapp.tables.signals.crossover import Crossover
from stockapp.tables.signals.limits import MAX_LOOKBACK, MAX_SYMBOLS
from stockapp.tables.signals.threshold import Threshold

CANDLE_SERIES = ("open", "high", "low", "close", "volume")
CROSSINGS = ("crosses_above", "crosses_below")
THRESHOLDS = ("enters_above", "leaves_above", "enters_below", "leaves_below")
BREAKOUTS = ("breakout_up", "breakout_down")
KINDS = CROSSINGS + THRESHOLDS + BREAKOUTS
# Used with fullmatch only: `$` also matches before a final newline, so `match` with `^...$`
# takes "AAPL\n" (docs/operations.md#problems-seen-and-fixed).
RULE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_SYMBOL = re.compile(r"[A-Z0-9.\-^=]{1,15}")
_FIELDS = {
    **{k: {"left", "right"} for k in CROSSINGS},
    **{k: {"series", "level"} for k in THRESHOLDS},
    **{k: {"lookback"} for k in BREAKOUTS},
}
_COMMON = {"name", "kind", "interval", "symbols", "provisional"}


class RuleError(ValueError):
    """A rule that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class RuleSpec:
    name: str
    kind: str
    interval: str
    symbols: tuple[str, ...] | None  # None: every symbol
    params: tuple[tuple[str, Any], ...]  # the kind's fields, in a fixed order
    provisional: bool = False

    def applies_to(self, symbol: str, interval: str) -> bool:
        return interval == self.interval and (self.symbols is None or symbol in self.symbols)

    @property
    def series(self) -> frozenset[str]:
        """The series the rule reads (none for a breakout, which reads highs and lows)."""
        return frozenset(
            v for k, v in self.params if k in ("left", "right", "series") and isinstance(v, str)
        )

    def make(self) -> Rule:
        p = dict(self.params)
        if self.kind in CROSSINGS:
            return Crossover(p["left"], p["right"], above=self.kind == "crosses_above")
        if self.kind in THRESHOLDS:
            entering, _, side = self.kind.partition("_")
            return Threshold(p["series"], p["level"], side == "above", entering == "enters")
        return Breakout(p["lookback"], up=self.kind == "breakout_up")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            **dict(self.params),
            "interval": self.interval,
            "symbols": "*" if self.symbols is None else list(self.symbols),
            "provisional": self.provisional,
        }


def _series(field: str, raw: Any, known: frozenset[str]) -> str:
    if not isinstance(raw, str) or raw not in known:
        raise RuleError(f"{field}: {raw!r} is not a series (one of {', '.join(sorted(known))})")
    return raw


def _number(field: str, raw: Any) -> float:
    if not isinstance(raw, bool) and isinstance(raw, int | float):
        try:
            number = float(raw)  # an int too large for a float raises
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise RuleError(f"{field}: {str(raw)[:40]} is not a finite number")


def parse_rule(
    raw: Any,
    intervals: Iterable[str],
    series: Iterable[str] = NAMES,
) -> RuleSpec:
    """A validated rule, or :class:`RuleError` naming the first problem."""
    if not isinstance(raw, Mapping):
        raise RuleError("a rule is a JSON object")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RuleError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    unknown = set(raw) - _COMMON - _FIELDS[kind]
    if unknown:
        raise RuleError(f"{', '.join(sorted(unknown))}: not a field of a {kind} rule")
    missing = _FIELDS[kind] - set(raw)
    if missing:
        raise RuleError(f"{', '.join(sorted(missing))}: required by a {kind} rule")
    name = raw.get("name")
    if not isinstance(name, str) or not RULE_NAME.fullmatch(name):
        raise RuleError(f"name: {name!r} is not 1-40 of a-z 0-9 _ - (starting with a letter/digit)")
    interval = raw.get("interval")
    intervals = tuple(intervals)
    if interval not in intervals:
        raise RuleError(f"interval: {interval!r} is not one of {', '.join(intervals)}")
    symbols = raw.get("symbols", "*")
    if symbols == "*":
        chosen = None
    elif (
        isinstance(symbols, list)
        and 0 < len(symbols) <= MAX_SYMBOLS
        and all(isinstance(s, str) and _SYMBOL.fullmatch(s) for s in symbols)
    ):
        chosen = tuple(dict.fromkeys(symbols))
    else:
        raise RuleError(
            f'symbols: "*" or a list of 1-{MAX_SYMBOLS} symbols (A-Z 0-9 . - ^ =, upper case)'
        )
    provisional = raw.get("provisional", False)
    if not isinstance(provisional, bool):
        raise RuleError("provisional: true or false")
    known = frozenset(CANDLE_SERIES) | frozenset(series)
    params: tuple[tuple[str, Any], ...]
    if kind in CROSSINGS:
        right = raw["right"]
        right = (
            _series("right", right, known) if isinstance(right, str) else _number("right", right)
        )
        params = (("left", _series("left", raw["left"], known)), ("right", right))
    elif kind in THRESHOLDS:
        params = (
            ("series", _series("series", raw["series"], known)),
            ("level", _number("level", raw["level"])),
        )
    else:
        lookback = raw["lookback"]
        if isinstance(lookback, bool) or not isinstance(lookback, int):
            raise RuleError(f"lookback: {lookback!r} is not a whole number")
        if not 1 <= lookback <= MAX_LOOKBACK:
            raise RuleError(f"lookback: {lookback} is outside 1..{MAX_LOOKBACK}")
        params = (("lookback", lookback),)
    return RuleSpec(name, kind, interval, chosen, params, provisional)


def lookback_of(rule: Mapping[str, Any]) -> int:
    """The highs or lows a rule, in its JSON form (as stored), keeps in each symbol's state:
    a breakout's ``lookback``; the other kinds keep one or two values, counted by the cap on
    the number of rules instead."""
    if rule.get("kind") not in BREAKOUTS:
        return 0
    lookback = rule.get("lookback")
    return lookback if isinstance(lookback, int) and not isinstance(lookback, bool) else 0


def _built_in() -> tuple[RuleSpec, ...]:
    raw: list[tuple[str, str, dict[str, object]]] = [
        ("golden_cross", "crosses_above", {"left": "sma_20", "right": "sma_50"}),
        ("death_cross", "crosses_below", {"left": "sma_20", "right": "sma_50"}),
        ("macd_cross_up", "crosses_above", {"left": "macd", "right": "macd_signal"}),
        ("macd_cross_down", "crosses_below", {"left": "macd", "right": "macd_signal"}),
        ("rsi_overbought", "enters_above", {"series": "rsi_14", "level": 70}),
        ("rsi_oversold", "enters_below", {"series": "rsi_14", "level": 30}),
        ("bb_break_up", "crosses_above", {"left": "close", "right": "bb_upper"}),
        ("bb_break_down", "crosses_below", {"left": "close", "right": "bb_lower"}),
        ("breakout_20_up", "breakout_up", {"lookback": 20}),
        ("breakout_20_down", "breakout_down", {"lookback": 20}),
    ]
    return tuple(
        parse_rule({"name": n, "kind": k, **fields, "interval": "5m"}, ("5m",))
        for n, k, fields in raw
    )


# On by default (every symbol, 5m candles), beside the rules users add.
BUILT_IN: tuple[RuleSpec, ...] = _built_in()


def built_in_for(intervals: Iterable[str], series: Iterable[str]) -> tuple[RuleSpec, ...]:
    """The built-in rules a deployment can run: those on a configured interval whose series
    the configured indicators give (with STOCKAPP_INDICATORS=sma:10,rsi:7 the crosses of
    sma_20 and sma_50 are left out, the breakouts stay)."""
    known = frozenset(CANDLE_SERIES) | frozenset(series)
    chosen = frozenset(intervals)
    return tuple(s for s in BUILT_IN if s.interval in chosen and s.series <= known)
