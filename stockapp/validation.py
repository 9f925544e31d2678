"""Turning raw Kafka records into :class:`Quote` or a precise reason for the dead-letter topic."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, overload

import orjson

from stockapp.models import Quote
from stockapp.timestamps import NoUtcOffset, iso_to_epoch_ms

SYMBOL = re.compile(r"^[A-Z0-9.\-^=]{1,15}$")
_BAR_FIELDS = ("open", "high", "low", "bar_seconds")

# Bounds that keep every value derived from a quote finite and every window computable: event
# times from 1970 to the year 3000 (a daily window of any such time has an end), prices and
# volumes whose products and sums over billions of quotes stay far below float overflow, bars
# of at most a day. A record outside them is dead-lettered with the bound it broke.
MAX_TS_MS = 32_503_680_000_000  # 3000-01-01T00:00:00Z
MAX_PRICE = 1e12
MAX_VOLUME = 1e15
MAX_BAR_SECONDS = 86_400
# Quotes in one packed record (a JSON array): a record is applied within one batch, so this
# bounds a batch's size in quotes too.
MAX_PACKED = 10_000


class Reason(StrEnum):
    """Why a record or element was refused, in a few kinds: the label of the dead-letter
    metric (``stockapp_invalid_total{reason}``), whose values must stay few whatever the
    input. Given where the refusal is raised, never read back out of its message."""

    UNPROCESSABLE = "unprocessable"  # parsed, but applying it raised
    INTERNAL = "internal"  # a fault of stockapp's own code for one symbol (docs/operations.md)
    OVER_LIMIT = "over_limit"  # the worker's bounds: state budget, symbols held, allow-list
    BAD_SYMBOL = "bad_symbol"
    TOO_MANY_QUOTES = "too_many_quotes"
    NOT_JSON = "not_json"
    MISSING_FIELD = "missing_field"
    OUT_OF_RANGE = "out_of_range"
    WRONG_TYPE = "wrong_type"
    OTHER = "other"


class InvalidQuote(ValueError):
    """The record cannot be used: ``kind`` classifies it, ``str(exc)`` is the reason recorded
    with it."""

    def __init__(self, kind: Reason, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@overload
def _number(data: Mapping[str, object], name: str, *, required: Literal[True] = ...) -> float: ...
@overload
def _number(data: Mapping[str, object], name: str, *, required: bool) -> float | None: ...
def _number(data: Mapping[str, object], name: str, *, required: bool = True) -> float | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidQuote(Reason.MISSING_FIELD, f"missing field {name!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidQuote(
            Reason.WRONG_TYPE, f"{name} must be a number, got {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise InvalidQuote(Reason.OUT_OF_RANGE, f"{name} must be finite, got {value}")
    return value


@overload
def _positive(data: Mapping[str, object], name: str, *, required: Literal[True] = ...) -> float: ...
@overload
def _positive(
    data: Mapping[str, object], name: str, *, required: Literal[False]
) -> float | None: ...
def _positive(data: Mapping[str, object], name: str, *, required: bool = True) -> float | None:
    value = _number(data, name, required=required)
    if value is not None and value <= 0:
        raise InvalidQuote(Reason.OUT_OF_RANGE, f"{name} must be > 0, got {value:g}")
    if value is not None and value > MAX_PRICE:
        raise InvalidQuote(
            Reason.OUT_OF_RANGE, f"{name} must be at most {MAX_PRICE:g}, got {value:g}"
        )
    return value


def parse_ts(value: object) -> int:
    """Epoch milliseconds from an integer (epoch ms) or an ISO-8601 string with an offset."""
    if isinstance(value, bool):
        raise InvalidQuote(
            Reason.WRONG_TYPE, "ts must be epoch milliseconds (integer) or ISO-8601 with offset"
        )
    if isinstance(value, int):
        return _in_range(value)
    if isinstance(value, str):
        try:
            ms = iso_to_epoch_ms(value)
        except NoUtcOffset:
            raise InvalidQuote(Reason.WRONG_TYPE, f"ts {value[:40]!r} has no UTC offset") from None
        except (ValueError, OverflowError):
            raise InvalidQuote(Reason.WRONG_TYPE, f"ts {value[:40]!r} is not ISO-8601") from None
        return _in_range(ms)
    if value is None:
        raise InvalidQuote(Reason.MISSING_FIELD, "missing field 'ts'")
    raise InvalidQuote(
        Reason.WRONG_TYPE, "ts must be epoch milliseconds (integer) or ISO-8601 with offset"
    )


def _in_range(ms: int) -> int:
    if ms < 0:
        raise InvalidQuote(Reason.OUT_OF_RANGE, f"ts must not be before 1970, got {ms} ms")
    if ms >= MAX_TS_MS:
        raise InvalidQuote(Reason.OUT_OF_RANGE, f"ts must be before the year 3000, got {ms} ms")
    return ms


def parse_quote(key: bytes | None, value: bytes | None, now_ms: int, max_skew_ms: int) -> Quote:
    """Validate one raw Kafka record holding one quote; raises :class:`InvalidQuote` with the
    reason."""
    data = _decode(value)
    if not isinstance(data, dict):
        raise InvalidQuote(
            Reason.NOT_JSON, f"record must be a JSON object, got {type(data).__name__}"
        )
    return _keyed(key, data, now_ms, max_skew_ms)


def parse_record(
    key: bytes | None, value: bytes | None, now_ms: int, max_skew_ms: int
) -> list[Quote | Element]:
    """Validate one raw Kafka record: a quote object, or a JSON array of quotes of the key's
    symbol (a packed record). Raises :class:`InvalidQuote` when the record as a whole is
    unusable; a bad element of an array comes back as an :class:`Element` with its reason,
    and its neighbours are used."""
    data = _decode(value)
    if isinstance(data, dict):
        return [_keyed(key, data, now_ms, max_skew_ms)]
    if not isinstance(data, list):
        raise InvalidQuote(
            Reason.NOT_JSON, f"record must be a JSON object or array, got {type(data).__name__}"
        )
    if not data:
        raise InvalidQuote(Reason.NOT_JSON, "record is an empty array")
    if len(data) > MAX_PACKED:
        raise InvalidQuote(
            Reason.TOO_MANY_QUOTES, f"record packs {len(data)} quotes (at most {MAX_PACKED})"
        )
    out: list[Quote | Element] = []
    for index, item in enumerate(data):
        try:
            if not isinstance(item, dict):
                raise InvalidQuote(
                    Reason.NOT_JSON, f"must be a JSON object, got {type(item).__name__}"
                )
            out.append(_keyed(key, item, now_ms, max_skew_ms))
        except InvalidQuote as exc:
            out.append(Element(index, item, f"element {index}: {exc}", exc.kind))
    return out


@dataclass(frozen=True, slots=True)
class Element:
    """A bad element of a packed record: its index, its JSON value and the reason."""

    index: int
    value: object
    reason: str
    kind: Reason = field(default=Reason.OTHER, compare=False)


def _decode(value: bytes | None) -> object:
    if value is None:
        raise InvalidQuote(Reason.NOT_JSON, "empty record (no value)")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidQuote(Reason.NOT_JSON, f"not valid JSON: {str(exc)[:80]}") from None


def _keyed(key: bytes | None, data: Mapping[str, object], now_ms: int, max_skew_ms: int) -> Quote:
    symbol = _symbol(data)
    if key is None or key != symbol.encode():
        shown = None if key is None else key[:20].decode(errors="replace")
        raise InvalidQuote(
            Reason.BAD_SYMBOL,
            f"record key {shown!r} must equal the upper-cased symbol {symbol!r} "
            "(partitioning and state ownership depend on it)",
        )
    return _fields(data, symbol, now_ms, max_skew_ms)


def quote_from_mapping(
    data: Mapping[str, object], now_ms: int | None = None, max_skew_ms: int | None = None
) -> Quote:
    """Validate a quote given as a mapping (sources, history files) with the rules of
    :func:`parse_quote`; the future-skew check only when ``now_ms`` is given."""
    return _fields(data, _symbol(data), now_ms, max_skew_ms)


def _symbol(data: Mapping[str, object]) -> str:
    symbol = data.get("symbol")
    if not isinstance(symbol, str):
        if symbol is None:
            raise InvalidQuote(Reason.MISSING_FIELD, "missing field 'symbol'")
        raise InvalidQuote(Reason.WRONG_TYPE, "symbol must be a string")
    symbol = symbol.strip().upper()
    if not SYMBOL.fullmatch(symbol):
        raise InvalidQuote(
            Reason.BAD_SYMBOL, f"bad symbol {symbol[:20]!r}: 1-15 characters of A-Z 0-9 . - ^ ="
        )
    return symbol


def _fields(
    data: Mapping[str, object], symbol: str, now_ms: int | None, max_skew_ms: int | None
) -> Quote:
    ts = parse_ts(data.get("ts"))
    if now_ms is not None and max_skew_ms is not None and ts > now_ms + max_skew_ms:
        raise InvalidQuote(
            Reason.OUT_OF_RANGE,
            f"ts is {(ts - now_ms) / 1000:.0f}s in the future (limit {max_skew_ms / 1000:.0f}s)",
        )
    price = _positive(data, "price")
    volume = _number(data, "volume")
    if not 0 <= volume <= MAX_VOLUME:
        raise InvalidQuote(
            Reason.OUT_OF_RANGE, f"volume must be within 0..{MAX_VOLUME:g}, got {volume:g}"
        )
    source = data.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > 32):
        raise InvalidQuote(Reason.WRONG_TYPE, "source must be a string of at most 32 characters")
    quote_id = data.get("id")
    if quote_id is not None and (not isinstance(quote_id, str) or not 0 < len(quote_id) <= 64):
        raise InvalidQuote(Reason.WRONG_TYPE, "id must be a string of 1 to 64 characters")
    volume_only = data.get("volume_only")
    if volume_only is None:  # as every optional field: null is absent
        volume_only = False
    if not isinstance(volume_only, bool):
        raise InvalidQuote(Reason.WRONG_TYPE, "volume_only must be a boolean")
    quote = Quote(
        symbol=symbol,
        ts=ts,
        price=price,
        volume=volume,
        bid=_positive(data, "bid", required=False),
        ask=_positive(data, "ask", required=False),
        source=source,
        id=quote_id,
        volume_only=volume_only,
    )
    present = [name for name in _BAR_FIELDS if data.get(name) is not None]
    if present:
        if volume_only:
            raise InvalidQuote(Reason.WRONG_TYPE, "volume_only is for trades, not bars")
        if len(present) != len(_BAR_FIELDS):
            missing = [name for name in _BAR_FIELDS if name not in present]
            raise InvalidQuote(Reason.MISSING_FIELD, f"bar record is missing {', '.join(missing)}")
        seconds = data["bar_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise InvalidQuote(Reason.WRONG_TYPE, "bar_seconds must be a positive integer")
        if seconds > MAX_BAR_SECONDS:
            raise InvalidQuote(
                Reason.OUT_OF_RANGE, f"bar_seconds must be at most {MAX_BAR_SECONDS} (a day)"
            )
        # A bar counts at its end: that end is the event time the symbol's watermark follows.
        end = ts + seconds * 1000
        if now_ms is not None and max_skew_ms is not None and end > now_ms + max_skew_ms:
            raise InvalidQuote(
                Reason.OUT_OF_RANGE,
                f"bar ends {(end - now_ms) / 1000:.0f}s in the future "
                f"(limit {max_skew_ms / 1000:.0f}s)",
            )
        quote.open = opened = _positive(data, "open")
        quote.high = high = _positive(data, "high")
        quote.low = low = _positive(data, "low")
        quote.bar_seconds = seconds
        if not low <= min(opened, price) <= max(opened, price) <= high:
            raise InvalidQuote(Reason.OUT_OF_RANGE, "bar must satisfy low <= open, close <= high")
    return quote


# The kind of a reason known only as text, e.g. a dead letter's ``stockapp.reason`` header read
# back by a consumer of the topic. The worker does not use it: each refusal carries its kind
# (``Reason``) from where it is raised. Checked in order; tests/unit/test_validation.py holds
# every message of this module to the kind it is raised with.
REASON_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("internal", ("internal error",)),
    ("unprocessable", ("could not be applied", "could not be parsed")),
    # The worker's bounds (stockapp/processing.py): the state budget, the symbols it holds.
    (
        "over_limit",
        ("STOCKAPP_STATE_MAX_BYTES", "STOCKAPP_MAX_SYMBOLS", "STOCKAPP_SYMBOLS_ALLOWED"),
    ),
    ("bad_symbol", ("bad symbol", "record key")),
    ("too_many_quotes", ("record packs",)),
    ("not_json", ("not valid JSON", "empty record", "JSON object", "empty array")),
    ("missing_field", ("missing field", "is missing")),
    (
        "out_of_range",
        (
            "must be finite",
            "must be > 0",
            "must be at most",
            "before 1970",
            "before the year",
            "must be within",
            "in the future",
            "low <= open",
        ),
    ),
    (
        "wrong_type",
        (
            "must be a number",
            "must be epoch",
            "must be a string",
            "ISO-8601",
            "UTC offset",
            "positive integer",
            "must be a boolean",
            "is for trades",
        ),
    ),
)


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason: one of REASON_CLASSES' names, or ``other``."""
    for name, marks in REASON_CLASSES:
        if any(mark in reason for mark in marks):
            return name
    return "other"
