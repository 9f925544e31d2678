"""Candles and indicators in batch, with pandas and ``ta``: the definitions of the streaming
contract (docs/streaming.md) computed the straightforward way, for ``stockapp backfill``.
Each indicator kind of the registry has its ``ta`` formula here."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import BollingerBands

from stockapp.models import Quote
from stockapp.tables.indicators.registry import DEFAULT_SET, IndicatorDef, Params
from stockapp.tables.intervals import Interval, parse_interval


def _macd(bars: pd.DataFrame, p: Params) -> list[pd.Series]:
    m = MACD(bars["close"], window_slow=p[1], window_fast=p[0], window_sign=p[2], fillna=False)
    return [m.macd(), m.macd_signal(), m.macd_diff()]


def _bollinger(bars: pd.DataFrame, p: Params) -> list[pd.Series]:
    bb = BollingerBands(bars["close"], window=p[0], window_dev=p[1], fillna=False)
    return [bb.bollinger_hband(), bb.bollinger_mavg(), bb.bollinger_lband()]


def _vwap(bars: pd.DataFrame, p: Params) -> list[pd.Series]:
    cum = bars.groupby("session")[["pv", "volume"]].cumsum()
    return [(cum["pv"] / cum["volume"]).where(cum["volume"] > 0)]


# kind -> (one symbol's candles: close, pv, volume, session; params) -> output series
FORMULAS: dict[str, Callable[[pd.DataFrame, Params], list[pd.Series]]] = {
    "sma": lambda b, p: [SMAIndicator(b["close"], p[0], fillna=False).sma_indicator()],
    "ema": lambda b, p: [EMAIndicator(b["close"], p[0], fillna=False).ema_indicator()],
    "rsi": lambda b, p: [RSIIndicator(b["close"], p[0], fillna=False).rsi()],
    "macd": _macd,
    "bb": _bollinger,
    "vwap": _vwap,
}


def indicators(bars: pd.DataFrame, defs: tuple[IndicatorDef, ...] = DEFAULT_SET) -> pd.DataFrame:
    """Indicator columns for one symbol's candles (columns close, pv, volume, session)."""
    columns: dict[str, pd.Series] = {}
    for d in defs:
        columns.update(zip(d.outputs, FORMULAS[d.kind](bars, d.params), strict=True))
    return pd.DataFrame(columns, index=bars.index)


def _frame(quotes: list[Quote], interval: Interval) -> pd.DataFrame:
    """One row per quote, in arrival order, as OHLCV; bars longer than a candle of
    ``interval``, or straddling its window, are left out (as when streaming)."""
    rows = []
    for q in quotes:
        bar = q.bar()
        window = interval.window(bar.ts)
        if window is None or bar.end > window[1]:  # outside the counted sessions, or too long
            continue
        rows.append(
            (
                q.symbol,
                window[0],
                bar.ts,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.pv,
                bar.priced,
            )
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "symbol",
            "window",
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "pv",
            "priced",
        ],
    )
    frame["arrival"] = range(len(frame))
    # Prices of priced trades only: a window's prices come from them when it has any
    # (volume-only trades, tables/candle.py); pandas' first/last/max/min skip the gaps.
    for column in PRICES:
        frame[f"priced_{column}"] = frame[column].where(frame["priced"])
    return frame


def _day_start(day: Interval, start: int) -> int:
    """Where a candle's VWAP session starts: its trading day's (a start is in one)."""
    window = day.window(start)
    assert window is not None
    return window[0]


PRICES = ("open", "high", "low", "close")
_AGG = {"open": "first", "high": "max", "low": "min", "close": "last"}


def candles(
    quotes: list[Quote],
    interval: Interval,
    tz: str,
    defs: tuple[IndicatorDef, ...] = DEFAULT_SET,
) -> pd.DataFrame:
    """Closed candles of ``quotes`` (ticks or bars, arrival order, none of them late) with
    the indicators ``defs``: one row per (symbol, start), ``start`` in epoch ms."""
    frame = _frame(quotes, interval)
    if frame.empty:
        return pd.DataFrame()
    frame = frame.sort_values(["ts", "arrival"], kind="stable")
    frame.index = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    out = []
    day = parse_interval("1d", tz, interval.calendar)
    for symbol, group in frame.groupby("symbol", sort=True):
        if interval.calendar is not None:
            # Windows cut from an exchange's sessions (tables/intervals.py): grouped by the
            # window each tick is in, as pandas has no resample by a trading calendar.
            resampled = group.groupby("window", sort=True)
        elif interval.daily:
            resampled = group.tz_convert(tz).resample("1D", label="left", closed="left")
        else:
            resampled = group.resample(
                f"{interval.ms}ms", label="left", closed="left", origin="epoch"
            )
        bars = resampled.agg(
            {
                **_AGG,
                **{f"priced_{column}": how for column, how in _AGG.items()},
                "ts": "count",
                "volume": "sum",
                "pv": "sum",
            }
        )
        for column in PRICES:
            bars[column] = bars.pop(f"priced_{column}").fillna(bars[column])
        bars = bars.rename(columns={"ts": "trades"})
        bars = bars[bars["trades"] > 0].copy()
        bars["symbol"] = symbol
        if interval.calendar is not None:
            bars["start"] = [int(ix) for ix in bars.index]
        else:
            bars["start"] = [int(ix.value // 1_000_000) for ix in bars.index]
        bars = bars.reset_index(drop=True)
        bars["session"] = [_day_start(day, s) for s in bars["start"]]
        out.append(pd.concat([bars, indicators(bars, defs)], axis=1))
    return pd.concat(out, ignore_index=True)
