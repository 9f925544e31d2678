"""A rule's firing on a symbol's candle, and how a symbol's candles are run through the rules.

A signal's ``key`` (symbol, interval, rule, candle start, and ``provisional`` for a firing on
the forming candle) is its identity everywhere: the Kafka record's key, the Cassandra row's
primary key, the webhook's ``Idempotency-Key``. A replay after a crash fires the same rules on
the same candles, so it repeats keys, never invents new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stockapp.tables.candle import Candle
from stockapp.tables.signals.base import Point
from stockapp.tables.signals.spec import RuleSpec


@dataclass(frozen=True, slots=True)
class Signal:
    symbol: str
    interval: str
    rule: str
    kind: str
    start: int  # the candle's start, epoch ms
    end: int
    values: dict[str, float | None] = field(default_factory=dict)
    provisional: bool = False

    @property
    def key(self) -> str:
        base = f"{self.symbol}|{self.interval}|{self.rule}|{self.start}"
        return base + "|provisional" if self.provisional else base

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "symbol": self.symbol,
            "interval": self.interval,
            "rule": self.rule,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "values": self.values,
            "provisional": self.provisional,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Signal:
        return cls(
            data["symbol"],
            data["interval"],
            data["rule"],
            data["kind"],
            int(data["start"]),
            int(data["end"]),
            dict(data.get("values") or {}),
            bool(data.get("provisional", False)),
        )


def point(candle: Candle, indicators: dict[str, float | None]) -> Point:
    """A candle as rules see it: OHLCV and the indicator values."""
    return {
        **indicators,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }


def on_close(
    states: MutableMapping[str, Any], rules: Iterable[tuple[str, RuleSpec]], candle: Candle
) -> list[Signal]:
    """Run a closed candle through the rules (``(key, spec)``, keyed as in ``states``, which
    holds each rule's state for this symbol and is updated); returns the firings."""
    fired = []
    seen = point(candle, candle.indicators)
    for key, spec in rules:
        rule = spec.make()
        stored = states.get(key)
        if stored is not None:
            rule.restore(stored)
        values = rule.values(seen)
        if rule.add(seen):
            fired.append(_signal(spec, candle, values, provisional=False))
        states[key] = rule.state()
    return fired


def on_forming(
    states: MutableMapping[str, Any],
    marks: MutableMapping[str, int],
    rules: Iterable[tuple[str, RuleSpec]],
    candle: Candle,
    indicators: dict[str, float | None],
) -> list[Signal]:
    """Ask the provisional rules whether the forming candle, closed now, would fire them. A
    rule fires provisionally at most once per candle (``marks``: the candle start each rule
    last fired on); nothing else changes."""
    fired = []
    seen = point(candle, indicators)
    for key, spec in rules:
        if not spec.provisional or marks.get(key) == candle.start:
            continue
        rule = spec.make()
        stored = states.get(key)
        if stored is not None:
            rule.restore(stored)
        if rule.peek(seen):
            marks[key] = candle.start
            fired.append(_signal(spec, candle, rule.values(seen), provisional=True))
    return fired


def _signal(
    spec: RuleSpec, candle: Candle, values: dict[str, float | None], provisional: bool
) -> Signal:
    return Signal(
        candle.symbol,
        candle.interval,
        spec.name,
        spec.kind,
        candle.start,
        candle.end,
        values,
        provisional,
    )
