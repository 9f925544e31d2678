"""A deterministic market simulator: geometric Brownian motion prices, realistic trade sizes.

Tick ``i`` happens at event time ``start + i * speedup / rate`` seconds and is due at wall time
``i / rate`` after the run began, so ``speedup > 1`` with a ``start`` in the past builds history
fast, and the same seed and start give the same ticks. A past replay that catches up with the
present continues at the present (a tick is never stamped in the future).

Given a trading calendar, it trades only in the sessions that count there: a tick that would
fall in closed time moves the clock on to the next session's open, so a live simulator waits
for the open, and a replayed history has overnight and weekend gaps (and price gaps across
them) as a market has.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stockapp.models import Quote
from stockapp.tables.sessions import Calendar

DEFAULT_SYMBOLS = ("AAPL", "AMZN", "GOOG", "MSFT", "TSLA")
SECONDS_PER_YEAR = 252 * 6.5 * 3600  # trading seconds: volatility is quoted per trading year


@dataclass(frozen=True)
class SymbolModel:
    symbol: str
    price: float  # starting price
    drift: float  # annual
    volatility: float  # annual


def default_model(symbol: str, index: int) -> SymbolModel:
    """Plausible, distinct parameters derived from the symbol, stable across runs."""
    rng = random.Random(f"model:{symbol}")
    return SymbolModel(
        symbol, round(rng.uniform(20, 500), 2), rng.uniform(-0.05, 0.15), rng.uniform(0.15, 0.6)
    )


class Simulator:
    def __init__(
        self,
        symbols: list[str],
        seed: int,
        rate: float,
        start_ms: int,
        speedup: float = 1.0,
        prices: dict[str, float] | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 ticks per second")
        self.models = [default_model(s, i) for i, s in enumerate(symbols)]
        self.rng = random.Random(seed)
        self.rate = rate
        self.start_ms = start_ms
        self.step_ms = 1000.0 * speedup / rate
        # ``prices`` continues a series (e.g. after a backfill) instead of the model's start.
        self.prices = {m.symbol: (prices or {}).get(m.symbol, m.price) for m in self.models}
        self.last_ts = {m.symbol: start_ms for m in self.models}
        # None or always open: trades around the clock.
        self.calendar = calendar if calendar is not None and not calendar.continuous else None
        self.index = 0  # the last tick's place on the clock (see ticks)

    def _trade_size(self) -> int:
        # Mostly odd lots and round lots, now and then a block.
        roll = self.rng.random()
        if roll < 0.6:
            return self.rng.randint(1, 99)
        if roll < 0.97:
            return 100 * self.rng.randint(1, 10)
        return 100 * self.rng.randint(10, 100)

    def ticks(self, now_ms: Callable[[], int] | None = None) -> Iterator[Quote]:
        """Endless ticks; ``now_ms()`` caps event times (None: no cap). ``index`` is the
        tick's place on the simulator's clock: due ``index / rate`` seconds after the start
        when paced live (closed time is skipped on that clock, not in the count of ticks)."""
        i = 0
        opened = False  # this tick is the first after closed time: stamped at the open
        while True:
            scheduled = self.start_ms + int(i * self.step_ms)
            if self.calendar is not None and self.calendar.segment(scheduled) is None:
                opens = self.calendar.next_open(scheduled)
                i = max(i + 1, math.ceil((opens - self.start_ms) / self.step_ms))
                opened = True
                continue
            ts = scheduled
            if now_ms is not None and not opened:
                ts = min(ts, now_ms())
            opened = False
            self.index = i
            model = self.models[self.rng.randrange(len(self.models))]
            dt = max(ts - self.last_ts[model.symbol], 1) / 1000 / SECONDS_PER_YEAR
            self.last_ts[model.symbol] = ts
            shock = self.rng.gauss(0.0, 1.0)
            price = self.prices[model.symbol] * math.exp(
                (model.drift - model.volatility**2 / 2) * dt
                + model.volatility * math.sqrt(dt) * shock
            )
            self.prices[model.symbol] = price
            price = round(price, 2) if price >= 1 else round(price, 4)
            spread = max(0.01, round(price * 0.0002, 2))
            yield Quote(
                symbol=model.symbol,
                ts=ts,
                price=price,
                volume=self._trade_size(),
                bid=round(price - spread / 2, 4),
                ask=round(price + spread / 2, 4),
                source="simulator",
            )
            i += 1
