"""Replaying quotes from CSV: ticks ``symbol,ts,price,volume`` or bars
``symbol,ts,open,high,low,close,volume``.

A header row is recognised by its column names (any order, case-insensitive); without one the
column count decides (4: ticks, 7: bars). ``ts`` is epoch milliseconds or ISO-8601 with an
offset. Every row is checked with the worker's own validation, so a row that the pipeline would
dead-letter is reported here with its line number and skipped (or, with ``strict``, stops the
replay).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from stockapp.errors import StockappError
from stockapp.models import Quote
from stockapp.validation import InvalidQuote, Reason, quote_from_mapping

TICK_COLUMNS = ("symbol", "ts", "price", "volume")
BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


class CsvRowError(StockappError):
    pass


def _number(text: str) -> float | int:
    value = float(text)
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def _columns(first: list[str]) -> tuple[tuple[str, ...], bool]:
    """The column names and whether ``first`` was a header."""
    names = tuple(c.strip().lower() for c in first)
    if "symbol" in names and "ts" in names:
        missing_tick = set(TICK_COLUMNS) - set(names)
        missing_bar = set(BAR_COLUMNS) - set(names)
        if missing_tick and missing_bar:
            raise CsvRowError(
                f"line 1: header lacks {', '.join(sorted(missing_tick))} (ticks) "
                f"or {', '.join(sorted(missing_bar))} (bars)"
            )
        return names, True
    if len(first) == len(TICK_COLUMNS):
        return TICK_COLUMNS, False
    if len(first) == len(BAR_COLUMNS):
        return BAR_COLUMNS, False
    raise CsvRowError(
        f"line 1: {len(first)} columns and no header: expected "
        f"{','.join(TICK_COLUMNS)} or {','.join(BAR_COLUMNS)}"
    )


def _quote(row: dict[str, str], bars: bool, bar_seconds: int) -> dict:
    ts_text = row["ts"].strip()
    quote: dict = {
        "symbol": row["symbol"].strip(),
        "ts": int(ts_text) if ts_text.isdigit() else ts_text,
        "volume": _number(row["volume"]),
    }
    if bars:
        quote.update(
            open=_number(row["open"]),
            high=_number(row["high"]),
            low=_number(row["low"]),
            price=_number(row["close"]),
            bar_seconds=bar_seconds,
        )
    else:
        quote["price"] = _number(row["price"])
    quote["source"] = "csv"
    return quote


def read_quotes(
    path: Path,
    bar_seconds: int = 60,
    strict: bool = False,
    report: Callable[[str], None] | None = None,
) -> Iterator[Quote]:
    """Valid quotes in file order (history files are checked for shape, not for future
    timestamps)."""
    report = report or (lambda message: print(f"csv: {message}", file=sys.stderr))
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            return
        names, had_header = _columns(first)
        bars = "open" in names
        rows = reader if had_header else _chain(first, reader)
        for line, values in enumerate(rows, start=2 if had_header else 1):
            if not values or all(not v.strip() for v in values):
                continue
            try:
                if len(values) != len(names):
                    raise InvalidQuote(
                        Reason.MISSING_FIELD, f"{len(values)} columns, expected {len(names)}"
                    )
                try:
                    quote = _quote(dict(zip(names, values, strict=True)), bars, bar_seconds)
                except ValueError as exc:
                    raise InvalidQuote(Reason.WRONG_TYPE, f"not a number: {exc}") from None
                parsed = quote_from_mapping(quote)
            except InvalidQuote as exc:
                if strict:
                    raise CsvRowError(f"{path}:{line}: {exc}") from None
                report(f"{path}:{line}: skipped: {exc}")
                continue
            yield parsed


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest
