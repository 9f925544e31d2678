"""Candle intervals and the event-time windows they cut.

Intraday intervals are aligned to the Unix epoch in UTC (pandas ``origin="epoch"``); ``1d`` is
aligned to midnight in the market's time zone, so a daily candle is a trading day even across
daylight-saving changes (those days last 23 or 25 hours).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

_SPEC = re.compile(r"^(\d+)([smh])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
DAY_MS = 86_400_000


@dataclass
class Interval:
    """One candle interval; ``window(ts)`` is the hot path, so daily windows are cached."""

    name: str
    ms: int  # nominal length; a daily window's real length can differ on DST days
    tz: ZoneInfo | None = None  # set for calendar-day intervals only
    _day_cache: tuple[int, int] = field(default=(0, 0), repr=False)

    @property
    def daily(self) -> bool:
        return self.tz is not None

    def window(self, ts: int) -> tuple[int, int]:
        """``(start, end)`` in epoch ms of the window holding ``ts``, end exclusive."""
        if self.tz is None:
            start = ts - ts % self.ms
            return start, start + self.ms
        start, end = self._day_cache
        if start <= ts < end:
            return start, end
        local = dt.datetime.fromtimestamp(ts / 1000, self.tz)
        midnight = dt.datetime.combine(local.date(), dt.time(), self.tz)
        following = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), self.tz)
        self._day_cache = (int(midnight.timestamp() * 1000), int(following.timestamp() * 1000))
        return self._day_cache

    def end(self, start: int) -> int:
        return self.window(start)[1]


def parse_interval(name: str, market_tz: str) -> Interval:
    """``"1m"``, ``"15m"``, ``"4h"``, ``"30s"`` (epoch-aligned) or ``"1d"`` (market days)."""
    if name == "1d":
        return Interval(name, DAY_MS, ZoneInfo(market_tz))
    match = _SPEC.fullmatch(name)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"unknown candle interval {name!r} (examples: 30s, 1m, 15m, 1h, 1d)")
    ms = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms >= DAY_MS:
        raise ValueError(f"interval {name!r}: use 1d for daily candles")
    return Interval(name, ms)
