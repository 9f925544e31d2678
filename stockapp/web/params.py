"""Validation of API requests: everything reaching Cassandra or the tables passes through here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from stockapp.tables.signals.spec import RULE_NAME
from stockapp.timestamps import NoUtcOffset, iso_to_epoch_ms
from stockapp.validation import SYMBOL

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
# Far enough for any market data, small enough that a millisecond count stays exact.
MAX_EPOCH_S = 32_503_680_000  # year 3000


class BadRequest(ValueError):
    """The request is malformed; the message says how (it becomes a 400)."""


@dataclass(frozen=True)
class CandleQuery:
    symbol: str
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int


def parse_symbol(raw: str) -> str:
    symbol = raw.strip().upper()
    if not SYMBOL.fullmatch(symbol):
        raise BadRequest(f"symbol {raw[:40]!r} is not 1-15 characters of A-Z 0-9 . - ^ =")
    return symbol


def parse_time(name: str, raw: str) -> int:
    """Epoch milliseconds from epoch seconds (integer or decimal) or ISO-8601 with an offset."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not 0 <= seconds <= MAX_EPOCH_S:  # also rejects nan and inf
            raise BadRequest(f"{name} must be epoch seconds between 0 and {MAX_EPOCH_S}")
        return int(round(seconds * 1000))
    try:
        ms = iso_to_epoch_ms(text)
    except NoUtcOffset:
        raise BadRequest(f"{name} {text[:40]!r} needs a UTC offset (e.g. Z or +00:00)") from None
    except ValueError:
        raise BadRequest(f"{name} {text[:40]!r} is neither epoch seconds nor ISO-8601") from None
    if not 0 <= ms <= MAX_EPOCH_S * 1000:
        raise BadRequest(f"{name} is out of range")
    return ms


def parse_interval(raw: str | None, intervals: tuple[str, ...]) -> str:
    interval = raw if raw is not None else "1m"
    if interval not in intervals:
        raise BadRequest(f"interval {interval[:20]!r} is not one of {', '.join(intervals)}")
    return interval


@dataclass(frozen=True)
class SignalQuery:
    symbol: str | None  # None: every symbol (read by day, newest first)
    interval: str | None
    rule: str | None
    before_ms: int | None  # only candles starting before this
    limit: int


SIGNAL_LIMIT = 100
MAX_SIGNAL_LIMIT = 1000


def _limit(raw: str | None, default: int, most: int) -> int:
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,7}", raw.strip()):
        raise BadRequest("limit must be an integer")
    limit = int(raw)
    if not 1 <= limit <= most:
        raise BadRequest(f"limit must be between 1 and {most}")
    return limit


def parse_signal_query(query: Mapping[str, str], intervals: tuple[str, ...]) -> SignalQuery:
    unknown = sorted(set(query) - {"symbol", "interval", "rule", "before", "limit"})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(u[:20] for u in unknown)}")
    rule = query.get("rule") or None
    if rule is not None and not RULE_NAME.fullmatch(rule):
        raise BadRequest(f"rule {rule[:40]!r} is not a rule name")
    interval = query.get("interval") or None
    return SignalQuery(
        parse_symbol(query["symbol"]) if query.get("symbol") else None,
        parse_interval(interval, intervals) if interval is not None else None,
        rule,
        parse_time("before", query["before"]) if query.get("before") else None,
        _limit(query.get("limit"), SIGNAL_LIMIT, MAX_SIGNAL_LIMIT),
    )


SYMBOLS_LIMIT = 1000


@dataclass(frozen=True)
class SymbolsQuery:
    after: str | None  # only symbols after this one (the previous page's ``next``)
    prefix: str  # only symbols starting with this ("": all)
    limit: int


def parse_symbols_query(query: Mapping[str, str]) -> SymbolsQuery:
    unknown = sorted(set(query) - {"after", "prefix", "limit"})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(u[:20] for u in unknown)}")
    after = parse_symbol(query["after"]) if query.get("after") else None
    prefix = query.get("prefix", "").strip().upper()
    if prefix and not SYMBOL.fullmatch(prefix):
        raise BadRequest(f"prefix {prefix[:40]!r} is not 1-15 characters of A-Z 0-9 . - ^ =")
    return SymbolsQuery(after, prefix, _limit(query.get("limit"), SYMBOLS_LIMIT, SYMBOLS_LIMIT))


def parse_candle_query(
    symbol: str, query: Mapping[str, str], intervals: tuple[str, ...]
) -> CandleQuery:
    unknown = sorted(set(query) - {"interval", "start", "end", "limit"})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(u[:20] for u in unknown)}")
    start = parse_time("start", query["start"]) if query.get("start") else None
    end = parse_time("end", query["end"]) if query.get("end") else None
    if start is not None and end is not None and start >= end:
        raise BadRequest("start must be before end")
    limit = _limit(query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    return CandleQuery(
        parse_symbol(symbol), parse_interval(query.get("interval"), intervals), start, end, limit
    )
