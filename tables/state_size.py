"""The largest a symbol's state can be for a given configuration, measured, not guessed.

Everything a :class:`SymbolState` holds is bounded by the settings (see its module): this builds
one with every part at its bound (indicator windows full, the most candles that can form at
once, every id memory full, the rules' state at their limits) out of full-precision numbers, and
encodes it. The worker refuses to start when that is over its state budget
(stockapp/state_budget.py), so a budget exceeded at run time is a defect, not a feed.
"""

from __future__ import annotations

import random

import orjson

from stockapp.tables.candle import Bar, Candle, Settled
from stockapp.tables.indicators import Sample
from stockapp.tables.quote_ids import BAR_IDS_MAX, TICK_IDS_MAX, digest
from stockapp.tables.symbol_state import CandleSpec, SymbolState

# Longer than any indicator's window may be (tables/indicators/registry.py allows 1,000),
# so every window is full.
_WARM_CANDLES = 1_100
_LONGEST_SYMBOL = "W" * 15
_RULE_KEY = "r" * 40 + ":" + "0" * 10  # a rule name at its longest, and its digest


def _number(rng: random.Random) -> float:
    """A price-like float with all 17 significant digits (the longest JSON numbers)."""
    return rng.uniform(100.0, 999.0) * (1 + 1e-13)


def worst_case_state(
    spec: CandleSpec, rules: int, rule_values: int, provisional: bool = True
) -> SymbolState:
    """A state with every part at its bound: ``rules`` rules in force on the symbol, whose
    states hold ``rule_values`` numbers between them (breakouts' look-backs) besides a pair
    each (crossovers)."""
    rng = random.Random(0)
    state = SymbolState(_LONGEST_SYMBOL, spec)
    state.last_offset, state.last_index, state.seq = 10**15, 9_999, 10**15
    state.topic_id = "A" * 22
    now = 4_102_444_800_000  # 2100-01-01: 13-digit times
    for interval in spec.intervals:
        indicators = state.indicators[interval.name]
        for _ in range(_WARM_CANDLES):
            close = _number(rng)
            indicators.add(Sample(close, close * 1e6, 1e6 + rng.random(), now))
        # The windows that can form at once: those between the watermark and the event time,
        # which are the grace period apart.
        forming = spec.grace_ms // interval.ms + 2
        start = interval.window(now)[0]
        for n in range(forming):
            begin = start + n * interval.ms
            bar = Bar.ohlc(begin, *(_number(rng) for _ in range(4)), 1e6 + rng.random(), 1)
            candle = Candle.first(state.symbol, interval.name, begin, begin + interval.ms, bar)
            candle.indicators = indicators.peek(Sample(bar.close, bar.pv, bar.volume, now))
            state.forming[interval.name][begin] = candle
            part = Settled.of(candle)
            part.open_seq = part.close_seq = 10**15
            state.settled[interval.name][begin] = part
    state.event_max = state.watermark = now
    for n in range(TICK_IDS_MAX):
        state.tick_ids.add(digest(f"t{n}"), now)
    for n in range(BAR_IDS_MAX):
        values = [now, 86_400_000, *(_number(rng) for _ in range(4)), 1e6 + rng.random(), 10**15]
        state.bar_ids.put(digest(f"b{n}"), values)
    per_rule = rule_values // rules if rules else 0
    for n in range(rules):
        key = f"{_RULE_KEY[: -len(str(n))]}{n}"
        state.rules[key] = [_number(rng) for _ in range(max(per_rule, 2))]
        if provisional:
            state.marks[key] = now
    return state


def worst_case_bytes(spec: CandleSpec, rules: int, rule_values: int) -> int:
    return len(orjson.dumps(worst_case_state(spec, rules, rule_values).to_dict()))
