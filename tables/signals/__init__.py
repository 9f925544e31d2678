"""Signal rules, evaluated incrementally on a symbol's candles (after the indicators' shape).

A rule sees each closed candle once (``add``) with its indicator values, and may be asked
about the forming candle (``peek``: would it fire if the candle closed now?) without changing
its state. Its state is small and JSON-safe, to live beside the indicators in the symbol's
table entry. :mod:`.spec` reads and validates rules in their JSON form; one module per kind;
:mod:`.book` holds the rules in force and their state; stockapp/processing.py runs them on
each closed candle.
"""

from stockapp.tables.signals.base import Point, Rule
from stockapp.tables.signals.spec import (
    BUILT_IN,
    RuleError,
    RuleSpec,
    built_in_for,
    parse_rule,
)

__all__ = ["BUILT_IN", "Point", "Rule", "RuleError", "RuleSpec", "built_in_for", "parse_rule"]
