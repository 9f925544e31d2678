"""What the users' rules may ask, in one place (docs/signals.md "Limits", docs/security.md).

Every user's rule with ``"symbols": "*"`` runs on every symbol, and its state lives in each
symbol's table entry (one changelog record per symbol, with a size budget of its own). So the
bound that matters per symbol is the sum over all users' rules: at most
:data:`MAX_USER_RULES` rules, of which the breakouts keep at most
:data:`MAX_TOTAL_LOOKBACK` highs or lows between them: about 38 KB of a symbol's state as
JSON at full precision (15 KB with two-decimal prices), however the rules are created.
Without that bound, 200 breakouts of 500 made one symbol's state 1.89 MB. The built-in rules
are fixed and small (two breakouts of 20). Both totals hold across workers whatever the
concurrency (stockapp/sinks/rules.py).
"""

from __future__ import annotations

MAX_USER_RULES = 200  # users' rules stored, all workers together
MAX_LOOKBACK = 500  # candles one breakout rule looks back on
MAX_TOTAL_LOOKBACK = 2_000  # the lookbacks of all users' rules, summed
MAX_SYMBOLS = 1_000  # symbols one rule may list
