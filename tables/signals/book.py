"""The rules in force: the built-in ones (unless turned off) and the users', swapped whole
when the stored rules change, and looked up per symbol and interval on each candle close."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

from stockapp.tables.signals.spec import RuleSpec


def rule_key(spec: RuleSpec) -> str:
    """The rule's name and a digest of its definition: the key of its state in a symbol's
    entry. A rule deleted and created again with other fields starts afresh."""
    body = orjson.dumps(spec.to_json(), option=orjson.OPT_SORT_KEYS)
    return f"{spec.name}:{hashlib.sha1(body).hexdigest()[:10]}"


class RuleBook:
    def __init__(self, built_in: Iterable[RuleSpec] = (), user: Iterable[RuleSpec] = ()) -> None:
        self.built_in = tuple(built_in)
        self.user: tuple[RuleSpec, ...] = ()
        self._cache: dict[tuple[str, str], tuple[tuple[str, RuleSpec], ...]] = {}
        self.keys: frozenset[str] = frozenset()
        self.any_provisional = False
        self._keyed: list[tuple[str, RuleSpec]] | None = None  # set by the first replace
        self.replace(user)

    @property
    def rules(self) -> tuple[RuleSpec, ...]:
        return self.built_in + self.user

    def replace(self, user: Iterable[RuleSpec]) -> bool:
        """The users' rules are now ``user`` (built-in names win a clash); True if they changed."""
        taken = {spec.name for spec in self.built_in}
        chosen = tuple(sorted((s for s in user if s.name not in taken), key=lambda s: s.name))
        if chosen == self.user and self._keyed is not None:
            return False
        self.user = chosen
        self._keyed = [(rule_key(spec), spec) for spec in self.rules]
        self.keys = frozenset(key for key, _ in self._keyed)
        self.any_provisional = any(spec.provisional for spec in self.rules)
        self._cache = {}
        return True

    def applying(self, symbol: str, interval: str) -> tuple[tuple[str, RuleSpec], ...]:
        """``(key, spec)`` of the rules for this symbol's candles of ``interval``."""
        found = self._cache.get((symbol, interval))
        if found is None:
            if len(self._cache) > 100_000:  # bounded whatever the number of symbols
                self._cache.clear()
            assert self._keyed is not None  # __init__ calls replace, which sets it
            found = tuple((k, s) for k, s in self._keyed if s.applies_to(symbol, interval))
            self._cache[(symbol, interval)] = found
        return found

    def get(self, name: str) -> RuleSpec | None:
        return next((spec for spec in self.rules if spec.name == name), None)
