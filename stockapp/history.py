"""Candles and indicators in batch, with pandas and ``ta``: the definitions of the streaming
contract (docs/streaming.md) computed the straightforward way. Used by ``stockapp backfill``,
and by the tests as the oracle for the incremental streaming code."""

from __future__ import annotations

import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import BollingerBands

from tables.intervals import Interval


def ta_indicators(closes: list[float]) -> pd.DataFrame:
    close = pd.Series(closes, dtype="float64")
    macd = MACD(close, window_slow=26, window_fast=12, window_sign=9, fillna=False)
    bb = BollingerBands(close, window=20, window_dev=2, fillna=False)
    return pd.DataFrame(
        {
            "sma_20": SMAIndicator(close, 20, fillna=False).sma_indicator(),
            "sma_50": SMAIndicator(close, 50, fillna=False).sma_indicator(),
            "ema_12": EMAIndicator(close, 12, fillna=False).ema_indicator(),
            "ema_26": EMAIndicator(close, 26, fillna=False).ema_indicator(),
            "rsi_14": RSIIndicator(close, 14, fillna=False).rsi(),
            "macd": macd.macd(),
            "macd_signal": macd.macd_signal(),
            "macd_hist": macd.macd_diff(),
            "bb_upper": bb.bollinger_hband(),
            "bb_middle": bb.bollinger_mavg(),
            "bb_lower": bb.bollinger_lband(),
        }
    )


def session_start(ts_ms: int, tz: str) -> int:
    """Start (epoch ms) of the market day holding ``ts_ms``."""
    return int(
        pd.Timestamp(ts_ms, unit="ms", tz="UTC").tz_convert(tz).normalize().value // 1_000_000
    )


def _frame(quotes: list[dict], interval: Interval) -> pd.DataFrame:
    """One row per quote, in arrival order, as OHLCV (a tick is O=H=L=C=price); bars longer
    than a candle of ``interval``, or straddling its window, are left out (as when streaming)."""
    rows = []
    for q in quotes:
        if "bar_seconds" in q and q.get("bar_seconds") is not None:
            start, end = interval.window(q["ts"])
            if q["ts"] + q["bar_seconds"] * 1000 > end:
                continue
            o, h, low, c = q["open"], q["high"], q["low"], q["price"]
            pv = (h + low + c) / 3.0 * q["volume"]
        else:
            o = h = low = c = q["price"]
            pv = c * q["volume"]
        rows.append((q["symbol"], q["ts"], o, h, low, c, float(q["volume"]), pv))
    frame = pd.DataFrame(
        rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume", "pv"]
    )
    frame["arrival"] = range(len(frame))
    return frame


def candles(quotes: list[dict], interval: Interval, tz: str) -> pd.DataFrame:
    """Closed candles of ``quotes`` (ticks or bars, arrival order, none of them late) with
    their indicators: one row per (symbol, start), ``start`` in epoch ms."""
    frame = _frame(quotes, interval)
    if frame.empty:
        return pd.DataFrame()
    frame = frame.sort_values(["ts", "arrival"], kind="stable")
    frame.index = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    out = []
    for symbol, group in frame.groupby("symbol", sort=True):
        if interval.daily:
            resampled = group.tz_convert(tz).resample("1D", label="left", closed="left")
        else:
            resampled = group.resample(
                f"{interval.ms}ms", label="left", closed="left", origin="epoch"
            )
        bars = resampled.agg(
            {
                "open": "first",
                "high": "max",
                "low": "min",
                "close": "last",
                "ts": "count",
                "volume": "sum",
                "pv": "sum",
            }
        )
        bars = bars.rename(columns={"ts": "trades"})
        bars = bars[bars["trades"] > 0].copy()
        bars["symbol"] = symbol
        bars["start"] = [int(ix.value // 1_000_000) for ix in bars.index]
        bars = bars.reset_index(drop=True)
        bars = pd.concat([bars, ta_indicators(list(bars["close"]))], axis=1)
        sessions = [session_start(s, tz) for s in bars["start"]]
        cum = bars.groupby(sessions)[["pv", "volume"]].cumsum()
        bars["vwap"] = (cum["pv"] / cum["volume"]).where(cum["volume"] > 0)
        out.append(bars)
    return pd.concat(out, ignore_index=True)
