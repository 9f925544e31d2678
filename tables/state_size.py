"""The largest a symbol's state can be for a given configuration, measured, not guessed.

Everything a :class:`SymbolState` holds is bounded by the settings (see its module): this builds
one with every part at its bound (indicator windows full, the most candles that can form at
once, every id memory full, the rules' state at their limits) out of full-precision numbers, and
encodes it. The worker refuses to start when that is over its state budget
(stockapp/state_budget.py), so a budget exceeded at run time is a defect, not a feed.
"""

from __future__ import annotations

import functools
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
    """A float whose JSON is as long as any can be (24 characters, e.g. -2.2250738585072014e-308):
    the state of a symbol priced in fractions of a cent, or of an indicator crossing zero, may
    hold such numbers anywhere."""
    return -(1 + rng.random()) * 1e-300


def worst_case_state(spec: CandleSpec, rules: int, lookback: int, longest: int) -> SymbolState:
    """A state with every part at its bound: ``rules`` rules in force on the symbol, of which
    breakouts keep ``lookback`` highs or lows between them (at most ``longest`` each) and the
    others a pair of values each (crossovers), all with a provisional mark."""
    rng = random.Random(0)
    number = functools.partial(_number, rng)
    state = SymbolState(_LONGEST_SYMBOL, spec)
    state.last_offset, state.last_index, state.seq = 10**15, 9_999, 10**15
    state.topic_id = "A" * 22
    now = 4_102_444_800_000  # 2100-01-01: 13-digit times
    for interval in spec.intervals:
        indicators = state.indicators[interval.name]
        for _ in range(_WARM_CANDLES):
            indicators.add(Sample(number(), number(), number(), now))
        # The windows that can form at once: those between the watermark and the event time,
        # which are the grace period apart.
        window = interval.window(now)
        assert window is not None, "the worst case is an always-open spec's"
        start = window[0]
        for n in range(spec.grace_ms // interval.ms + 2):
            begin = start + n * interval.ms
            bar = Bar(begin, number(), number(), number(), number(), number(), number(), 10**8)
            candle = Candle.first(state.symbol, interval.name, begin, begin + interval.ms, bar)
            candle.indicators = indicators.peek(Sample(number(), number(), number(), now))
            candle.trades = 10**9
            candle.priced = False  # stored as one more field (tables/candle.py)
            state.forming[interval.name][begin] = candle
            part = Settled.of(candle)
            part.open_seq = part.close_seq = 10**15
            state.settled[interval.name][begin] = part
    state.event_max = state.watermark = now
    for n in range(TICK_IDS_MAX):
        state.tick_ids.add(digest(f"t{n}"), now)
    for n in range(BAR_IDS_MAX):
        kept = [now, 86_400_000, *(number() for _ in range(5)), 10**15]
        state.bar_ids.put(digest(f"b{n}"), kept)
    left = lookback
    for n in range(rules):
        key = f"{_RULE_KEY[: -len(str(n))]}{n}"
        values = min(left, longest) if left > 2 else 2
        left -= values if left > 2 else 0
        state.rules[key] = [number() for _ in range(values)]
        state.marks[key] = now
    return state


def worst_case_bytes(spec: CandleSpec, rules: int, lookback: int, longest: int) -> int:
    return len(orjson.dumps(worst_case_state(spec, rules, lookback, longest).to_dict()))
