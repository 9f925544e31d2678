"""What a signal pushed to the live signals feed looks like, checked before it is pushed.

``/api/signals/live`` relays the signals topic, which anyone who may write to Kafka can write
to; the page draws what it gets. A record that is not a signal of this shape (a value that is
not a number, a missing field, an odd symbol) is dropped and counted, never pushed: one bad
record must not reach every open page. The signal is rebuilt from the known fields only.
"""

from __future__ import annotations

import math
import re
from typing import Any

from stockapp.tables.signals.spec import KINDS, RULE_NAME
from stockapp.validation import SYMBOL

INTERVAL = re.compile(r"[1-9][0-9]{0,5}[smhd]")
MAX_VALUES = 32
MAX_KEY = 200
MAX_MS = 10**14  # epoch milliseconds, about the year 5138


def _text(value: Any, pattern: re.Pattern[str] | None = None, limit: int = 64) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and (pattern is None or pattern.fullmatch(value) is not None)
    )


def _millis(value: Any) -> bool:
    return type(value) is int and 0 <= value < MAX_MS


def _number(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and math.isfinite(value))


def checked_signal(data: Any) -> dict[str, Any] | None:
    """The signal as the page may get it; None if ``data`` is not one."""
    if not isinstance(data, dict):
        return None
    values = data.get("values")
    if not isinstance(values, dict):
        return None
    ok = (
        _text(data.get("key"), limit=MAX_KEY)
        and _text(data.get("symbol"), SYMBOL, 15)
        and _text(data.get("interval"), INTERVAL, 8)
        and _text(data.get("rule"), RULE_NAME, 40)
        and data.get("kind") in KINDS
        and _millis(data.get("start"))
        and _millis(data.get("end"))
        and isinstance(data.get("provisional"), bool)
        and len(values) <= MAX_VALUES
        and all(_text(k, limit=64) and _number(v) for k, v in values.items())
    )
    if not ok:
        return None
    fields = ("key", "symbol", "interval", "rule", "kind", "start", "end", "provisional")
    return {**{f: data[f] for f in fields}, "values": dict(values)}
