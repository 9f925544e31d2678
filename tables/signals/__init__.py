"""Signal rules, evaluated incrementally on a symbol's candles (after the indicators' shape).

A rule sees each closed candle once (``add``) with its indicator values, and may be asked
about the forming candle (``peek``: would it fire if the candle closed now?) without changing
its state. Its state is small and JSON-safe, to live beside the indicators in the symbol's
table entry. :mod:`.spec` reads and validates rules in their JSON form; one module per kind.

Not wired into the stream yet (issue 13): these are the pure parts, tested against a pandas
oracle over the same candles.
"""

from stockapp.tables.signals.base import Point, Rule
from stockapp.tables.signals.spec import BUILT_IN, RuleError, RuleSpec, parse_rule

__all__ = ["BUILT_IN", "Point", "Rule", "RuleError", "RuleSpec", "parse_rule"]
