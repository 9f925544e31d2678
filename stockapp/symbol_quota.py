"""Which symbols a worker may start a state for: the allow-list and STOCKAPP_MAX_SYMBOLS."""

from __future__ import annotations

from collections.abc import Callable

from stockapp.state_cache import StateCache

__all__ = ["SymbolQuota"]


class SymbolQuota:
    def __init__(
        self,
        allowed: frozenset[str] | None,
        limit: int,
        cache: StateCache,
        owned: Callable[[], set[int] | None],
    ) -> None:
        self.allowed = allowed  # the only symbols processed (None: any)
        self.limit = limit
        self.cache = cache
        self.owned = owned
        # Symbols whose state this worker holds in its partitions (None: count again).
        self.count: int | None = None

    def allows(self, symbol: str) -> bool:
        return self.allowed is None or symbol in self.allowed

    def held(self) -> int:
        """How many symbols this worker holds state for in its partitions (counted from the
        table after each rebalance, then kept up to date)."""
        if self.count is None:
            owned = self.owned()
            self.count = sum(1 for symbol in self.cache.keys() if self.cache.owns(symbol, owned))
        return self.count

    def room(self) -> int:
        return self.limit - self.held()

    def refusal(self, symbol: str) -> str | None:
        """Why a quote of a symbol this worker holds no state for may not start one, if it
        may not (it is counted as held if it may)."""
        if not self.allows(symbol):
            return f"symbol {symbol} is not in STOCKAPP_SYMBOLS_ALLOWED"
        held = self.held()
        if held >= self.limit:
            return (
                f"this worker holds {held} symbols already "
                f"(STOCKAPP_MAX_SYMBOLS={self.limit}); new symbol {symbol} refused"
            )
        self.count = held + 1
        return None

    def added(self) -> None:
        """A symbol was started from elsewhere (a seed)."""
        if self.count is not None:
            self.count += 1

    def reset(self) -> None:
        """Partitions moved: count again."""
        self.count = None
