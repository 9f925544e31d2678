"""Running the users' signal rules over what a batch or a timer close changed.

The rules' state is in each symbol's state, stored with it: a replay fires the same signals
again. Pure: no I/O, the states given are changed in place.
"""

from __future__ import annotations

from collections.abc import Mapping

from stockapp.tables.candle import Candle
from stockapp.tables.signals.book import RuleBook
from stockapp.tables.signals.signal import Signal, on_close, on_forming
from stockapp.tables.symbol_state import SymbolState

__all__ = ["close_signals", "provisional_signals", "signals"]


def signals(
    book: RuleBook | None,
    states: Mapping[str, SymbolState],
    closed: list[Candle],
    touched: set[str],
) -> tuple[list[Signal], dict[str, BaseException]]:
    """Run the closed candles through the rules, in the order they closed, then ask the
    provisional rules about the touched symbols' forming candles.

    Each symbol's rules run apart: one whose rules raise (a fault of ours) is returned with
    its exception, and the signals of the others are kept, in the same order."""
    if book is None:
        return [], {}
    by_symbol: dict[str, list[int]] = {}
    for index, candle in enumerate(closed):
        by_symbol.setdefault(candle.symbol, []).append(index)
    on_candle: dict[int, list[Signal]] = {}
    failed: dict[str, BaseException] = {}
    for symbol, indexes in by_symbol.items():
        try:
            for index in indexes:
                on_candle[index] = close_signals(book, states, [closed[index]], prune=False)
            _prune(states[symbol], book.keys)
        except Exception as exc:  # noqa: BLE001 - this symbol's records go to the DLQ
            failed[symbol] = exc
    fired = [
        signal
        for index, candle in enumerate(closed)
        if candle.symbol not in failed
        for signal in on_candle.get(index, ())
    ]
    if book.any_provisional:
        for symbol in touched:
            if symbol in failed:
                continue
            try:
                fired += provisional_signals(book, states, {symbol})
            except Exception as exc:  # noqa: BLE001 - as above
                failed[symbol] = exc
    if failed:
        fired = [signal for signal in fired if signal.symbol not in failed]
    return fired, failed


def close_signals(
    book: RuleBook, states: Mapping[str, SymbolState], closed: list[Candle], prune: bool = True
) -> list[Signal]:
    """The signals the closed candles fire, in their order."""
    fired: list[Signal] = []
    for candle in closed:
        rules = book.applying(candle.symbol, candle.interval)
        if not rules:
            continue
        state = states[candle.symbol]
        fired += on_close(state.rules, rules, candle)
        for key, _ in rules:  # the candle a provisional firing was about has closed
            if state.marks.get(key) == candle.start:
                del state.marks[key]
    if prune:
        # Rules deleted or changed since (a change is a new key): their state goes, also where
        # no rule applies any more, or it would pile up in the state with each change.
        for symbol in {candle.symbol for candle in closed}:
            _prune(states[symbol], book.keys)
    return fired


def provisional_signals(
    book: RuleBook, states: Mapping[str, SymbolState], touched: set[str]
) -> list[Signal]:
    """What the provisional rules say about the touched symbols' forming candles."""
    fired: list[Signal] = []
    for symbol in touched:
        state = states[symbol]
        if state.marks:
            _prune(state, book.keys)
        for candle in state.forming_candles():
            rules = book.applying(symbol, candle.interval)
            if any(spec.provisional for _, spec in rules):
                fired += on_forming(
                    state.rules, state.marks, rules, candle, state.provisional(candle)
                )
    return fired


def _prune(state: SymbolState, keys: frozenset[str]) -> None:
    """Drop the state of rules no longer in force, and their marks."""
    for key in [k for k in state.rules if k not in keys]:
        del state.rules[key]
    for key in [k for k in state.marks if k not in keys]:
        del state.marks[key]
