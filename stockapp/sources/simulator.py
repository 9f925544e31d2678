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
        self.index = 0  # the last tick's number (see ticks)
        self.waits_for: int | None = None  # the last tick is stamped at this open, ahead

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
        tick's number, due ``index / rate`` seconds after the start when paced live.

        With a calendar, a tick that would fall in closed time moves the event clock on to the
        next open: at once in a history (or a replay still in the past), and when the present
        is closed the tick is stamped at the open and ``waits_for`` says so, for the pacer
        (:class:`SessionPacer`) to hold it until then."""
        i = 0
        shift = 0  # closed time skipped so far, in event ms
        while True:
            scheduled = self.start_ms + shift + int(i * self.step_ms)
            ts, present = scheduled, False
            if now_ms is not None:
                now = now_ms()
                if scheduled > now:
                    ts, present = now, True
            self.waits_for = None
            if self.calendar is not None and self.calendar.segment(ts) is None:
                opens = self.calendar.next_open(ts)
                shift += max(opens - scheduled, 0)
                if not present:
                    continue  # the next tick is the open's
                ts = self.waits_for = opens
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


class SessionPacer:
    """Paces a live simulator with a calendar: ``rate`` ticks a second, a tick stamped at the
    next open held until the open (wall time), and the ticks after it paced from there.

    A producer's pacer gives each quote's due time in seconds after its start; this one's
    clock starts when it is made, before the producer's (so a held tick never goes early)."""

    def __init__(self, simulator: Simulator, rate: float, clock: Callable[[], float]) -> None:
        self.simulator = simulator
        self.rate = rate
        self.clock = clock  # wall time, epoch seconds
        self.began_ms = clock() * 1000
        self.offset = 0.0  # seconds waited for opens so far

    def __call__(self, sent: int, quote: Quote) -> float:
        due = self.simulator.index / self.rate + self.offset
        opens = self.simulator.waits_for
        if opens is not None:
            # The producer lets a quote go up to 2 ms early: 5 ms after the open it is open.
            at_open = (opens - self.began_ms) / 1000 + 0.005
            if at_open > due:
                self.offset += at_open - due
                due = at_open
        return due
