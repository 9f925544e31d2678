"""Incremental technical indicators, one per module, equal to the ``ta`` library's.

:mod:`.registry` says which exist; :class:`IndicatorSet` runs a set of them for one candle
series and stores their state keyed by indicator, so a state written with another set still
loads: indicators it lacks start fresh, ones no longer configured are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from stockapp.tables.indicators.base import Indicator, Sample
from stockapp.tables.indicators.registry import (
    DEFAULT_SET,
    NAMES,
    POSITIONAL_STATE_KEYS,
    IndicatorDef,
)

__all__ = ["NAMES", "IndicatorSet", "Sample", "Values"]

log = logging.getLogger(__name__)

Values = dict[str, float | None]


@cache
def _layout(
    defs: tuple[IndicatorDef, ...],
) -> tuple[tuple[str, tuple[str, ...], Callable[[], Indicator]], ...]:
    """Each indicator's state key, output names and maker, built once per set: every symbol's
    every interval shares these strings rather than holding copies, and a state decoded from
    the table (a cache miss) makes its indicators without looking each kind up again."""
    return tuple((d.key, d.outputs, d.make) for d in defs)


class IndicatorSet:
    __slots__ = ("parts",)

    def __init__(self, defs: tuple[IndicatorDef, ...] = DEFAULT_SET) -> None:
        self.parts = [(key, outputs, make()) for key, outputs, make in _layout(defs)]

    def add(self, sample: Sample) -> Values:
        """Take a closed candle for good."""
        values: Values = {}
        for _, outputs, part in self.parts:
            values.update(zip(outputs, part.add(sample), strict=True))
        return values

    def peek(self, sample: Sample) -> Values:
        """The values the forming candle would get if it closed now."""
        values: Values = {}
        for _, outputs, part in self.parts:
            values.update(zip(outputs, part.peek(sample), strict=True))
        return values

    def state(self) -> dict[str, Any]:
        return {key: part.state() for key, _, part in self.parts}

    @classmethod
    def restored(
        cls, state: dict[str, Any] | list[Any], defs: tuple[IndicatorDef, ...] = DEFAULT_SET
    ) -> IndicatorSet:
        indicators = cls(defs)
        if isinstance(state, list):
            state = dict(zip(POSITIONAL_STATE_KEYS, state, strict=False))
        for i, (key, outputs, part) in enumerate(indicators.parts):
            if key not in state:
                continue  # new since the state was written: starts fresh
            try:
                part.restore(state[key])
            except (TypeError, ValueError, IndexError, KeyError):
                # A state this code cannot read must not stop the stream; the indicator warms
                # up again from the next candle instead (a half-restored one is replaced).
                log.warning("indicator state %r could not be read; it starts fresh", key)
                indicators.parts[i] = (key, outputs, defs[i].make())
        return indicators
