"""Deterministic test streams: ticks out of order within grace, plus some truly late ticks."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from tests.oracle import Tick

NEW_YORK = ZoneInfo("America/New_York")


def generate_ticks(
    count: int,
    symbols: list[str],
    seed: int,
    start_ms: int,
    mean_gap_ms: int = 1000,
    jitter_ms: int = 3000,
    late_every: int = 0,
    late_by_ms: int = 600_000,
) -> list[Tick]:
    """``count`` ticks in arrival order.

    Each symbol's clock moves forward by about ``mean_gap_ms`` per tick; each tick's time is
    that clock minus up to ``jitter_ms`` (out of order by less than the grace period when
    ``jitter_ms`` < grace). Every ``late_every``-th tick is ``late_by_ms`` behind instead.
    """
    rng = random.Random(seed)
    clocks = {s: start_ms for s in symbols}
    prices = {s: 50.0 + 10 * i for i, s in enumerate(symbols)}
    ticks = []
    for n in range(count):
        symbol = rng.choice(symbols)
        clocks[symbol] += rng.randint(1, 2 * mean_gap_ms)
        ts = clocks[symbol] - rng.randint(0, jitter_ms)
        if late_every and n % late_every == late_every - 1:
            ts = clocks[symbol] - late_by_ms
        prices[symbol] = round(max(1.0, prices[symbol] * (1 + rng.gauss(0, 0.002))), 4)
        ticks.append(Tick(symbol, ts, prices[symbol], float(rng.randint(1, 50) * 10)))
    return ticks


def week_of_ticks(
    first: str, days: int, symbols: list[str], seed: int, max_gap_ms: int = 119_000
) -> list[Tick]:
    """Ticks in arrival order around the clock (closed hours, weekends and holidays included)
    for ``days`` days from ``first`` (a date; New York midnight), one every 1 s to
    ``max_gap_ms`` per symbol (about a minute by default), each up to 4 s out of order (inside
    a 5 s grace period: none is late); 2 % of them volume-only."""
    rng = random.Random(seed)
    start = int(dt.datetime.fromisoformat(first).replace(tzinfo=NEW_YORK).timestamp() * 1000)
    end = start + days * 86_400_000
    ticks = []
    clocks = dict.fromkeys(symbols, start)
    prices = {s: 100.0 + 10 * i for i, s in enumerate(symbols)}
    while min(clocks.values()) < end:
        symbol = rng.choice(symbols)
        clocks[symbol] += rng.randint(1_000, max_gap_ms)
        prices[symbol] = round(max(1.0, prices[symbol] * (1 + rng.gauss(0, 0.002))), 4)
        ts = clocks[symbol] - rng.randint(0, 4_000)
        if ts >= end:  # another symbol's clock is still behind
            continue
        ticks.append(
            Tick(symbol, ts, prices[symbol], float(rng.randint(1, 50) * 10), rng.random() < 0.02)
        )
    return ticks
