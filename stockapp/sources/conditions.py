"""Trade conditions: what a trade of a live feed counts for in a candle.

The consolidated tape's rules (CTA for NYSE-listed, UTP for Nasdaq-listed stocks) say, for each
sale condition, whether the trade updates the last sale (open and close), the high and low, and
the volume. stockapp builds intraday candles from trades, so it follows the rules for minute
bars that Alpaca publishes ("How are bars aggregated?"), simplified to three outcomes:

- ``ALL``: a regular trade, in price and volume;
- ``VOLUME``: volume only (odd lots, average-price, out-of-sequence and other prints whose price
  is not the market's): published with ``volume_only`` (tables/candle.py);
- ``NONE``: nothing (official open and close prints, which repeat volume already counted): not
  published, counted in the source's summary.

A trade with several conditions gets the strictest. A code that is not in the table counts as
a regular trade (a new modifier is far likelier than a new kind of off-tape print), and is
counted in the summary so it is seen. docs/sources.md has both tables in words.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class Counts(IntEnum):
    """What a trade counts for; ordered so that the strictest of several is the smallest."""

    NONE = 0
    VOLUME = 1
    ALL = 2


# Alpaca (SIP letters; IEX trades carry "@" or "I"). "B" differs by tape: on the CTA tapes (A,
# B) it is an average-price trade, on UTP's (C) a bunched trade.
ALPACA: dict[str, Counts] = {
    **dict.fromkeys(
        [" ", "@", "A", "D", "E", "F", "K", "L", "O", "T", "X", "Y", "5", "6"], Counts.ALL
    ),
    **dict.fromkeys(
        ["C", "G", "H", "I", "N", "P", "R", "U", "V", "W", "Z", "4", "7"], Counts.VOLUME
    ),
    **dict.fromkeys(["M", "Q", "9"], Counts.NONE),
}
ALPACA_CTA_B = Counts.VOLUME  # "B" on tapes A and B: average-price trade
ALPACA_UTP_B = Counts.ALL  # "B" on tape C: bunched trade

# Finnhub's numeric codes (its trade-conditions sheet), by the same rules as Alpaca's letters
# for the condition of the same name.
FINNHUB: dict[str, Counts] = {
    **dict.fromkeys(
        "1 2 4 6 7 8 13 14 15 18 19 23 24 28 29 31 33 34 35 36 38 41".split(), Counts.ALL
    ),
    **dict.fromkeys("3 5 9 10 11 12 17 21 22 25 26 27 30 32 37".split(), Counts.VOLUME),
    **dict.fromkeys("16 20 39 40".split(), Counts.NONE),
}


def alpaca_counts(conditions: Iterable[str], tape: str | None) -> tuple[Counts, bool]:
    """What an Alpaca trade counts for, and whether one of its codes was unknown."""
    counts, unknown = Counts.ALL, False
    for code in conditions:
        if code == "B":
            rule = ALPACA_UTP_B if tape == "C" else ALPACA_CTA_B
        else:
            found = ALPACA.get(code)
            if found is None:
                unknown = True
                continue
            rule = found
        counts = min(counts, rule)
    return counts, unknown


def finnhub_counts(conditions: Iterable[str]) -> tuple[Counts, bool]:
    """What a Finnhub trade counts for, and whether one of its codes was unknown."""
    counts, unknown = Counts.ALL, False
    for code in conditions:
        found = FINNHUB.get(str(code))
        if found is None:
            unknown = True
            continue
        counts = min(counts, found)
    return counts, unknown
