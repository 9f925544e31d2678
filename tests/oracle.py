"""What the pipeline must produce, computed independently with pandas and ``ta``.

Used by unit tests (pure state) and integration tests (rows in Cassandra) alike. It shares no
code with stockapp (not even :mod:`stockapp.history`, which does the same job for backfill): an
oracle built from the code it checks could not catch that code's mistakes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import BollingerBands

INTRADAY_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


@dataclass(frozen=True)
class Tick:
    symbol: str
    ts: int  # epoch ms
    price: float
    volume: float
    # A trade kept out of the last sale, high and low: in volume (and VWAP) only, unless its
    # window holds no other kind of trade (docs/sources.md, "Trade conditions").
    volume_only: bool = False


_UTC_DAY_MS = 86_400_000


def _local_day(ts: int, tz: str) -> tuple[int, int]:
    """The local day holding ``ts``: [midnight, next midnight) in epoch ms, by pandas."""
    stamp = pd.Timestamp(ts, unit="ms", tz="UTC").tz_convert(tz)
    start = stamp.normalize()
    # Next local midnight (a day may last 23 or 25 hours).
    end = (start.tz_localize(None) + pd.Timedelta(days=1)).tz_localize(tz)
    return int(start.value // 1_000_000), int(end.value // 1_000_000)


@cache
def _local_days_over(utc_day: int, tz: str) -> tuple[tuple[int, int], ...]:
    """The local days that overlap UTC day number ``utc_day``, each as :func:`_local_day`
    gives it: a pandas call per local day rather than per tick (the pipeline's oracle asks
    for every tick, and a call costs about 0.3 ms)."""
    days = []
    at, stop = utc_day * _UTC_DAY_MS, (utc_day + 1) * _UTC_DAY_MS
    while at < stop:
        try:
            days.append(_local_day(at, tz))
        except ValueError:
            # A clock change at midnight: pandas cannot place this day's midnight. The days
            # from here on are asked of pandas tick by tick (day_window), raising as it does.
            break
        at = days[-1][1]  # local days are contiguous: the next starts where this one ends
    return tuple(days)


def day_window(ts: int, tz: str) -> tuple[int, int]:
    for start, end in _local_days_over(ts // _UTC_DAY_MS, tz):
        if start <= ts < end:
            return start, end
    return _local_day(ts, tz)


def window_end(ts: int, interval: str, tz: str) -> int:
    if interval == "1d":
        return day_window(ts, tz)[1]
    size = INTRADAY_MS[interval]
    return ts - ts % size + size


def late_intervals(
    ticks: list[Tick], intervals: list[str], grace_ms: int, tz: str
) -> list[set[str]]:
    """For each tick in arrival order, the intervals it is late for (its window already closed
    because the symbol's latest event time minus grace had passed the window's end)."""
    latest: dict[str, int] = {}
    result = []
    for tick in ticks:
        seen = latest.get(tick.symbol)
        watermark = None if seen is None else seen - grace_ms
        result.append(
            {
                i
                for i in intervals
                if watermark is not None and window_end(tick.ts, i, tz) <= watermark
            }
        )
        latest[tick.symbol] = tick.ts if seen is None else max(seen, tick.ts)
    return result


# STOCKAPP_INDICATORS' default, in the setting's form (docs/configuration.md).
DEFAULT_INDICATORS = "sma:20,sma:50,ema:12,ema:26,rsi:14,macd:12:26:9,bb:20:2,vwap"


def _suffix(params: list[str], classic: list[str] | None = None) -> str:
    """The documented naming: parameters joined by "_", a decimal point written "p"; the
    classic MACD and Bollinger parameters give the bare names (macd, bb_upper, ...)."""
    if params == classic:
        return ""
    return "_" + "_".join(p.replace(".", "p") for p in params)


def ta_indicators(closes: list[float], indicators: str = DEFAULT_INDICATORS) -> pd.DataFrame:
    """The streaming contract's indicators of a close series (docs/streaming.md), by ``ta``,
    for a STOCKAPP_INDICATORS value (VWAP, which needs volumes and sessions, is left out)."""
    close = pd.Series(closes, dtype="float64")
    columns: dict[str, pd.Series] = {}
    for item in indicators.split(","):
        kind, *params = item.strip().split(":")
        if kind in ("rsi", "macd", "bb") and not params:
            params = {"rsi": ["14"], "macd": ["12", "26", "9"], "bb": ["20", "2"]}[kind]
        if kind == "sma":
            columns[f"sma_{params[0]}"] = SMAIndicator(close, int(params[0])).sma_indicator()
        elif kind == "ema":
            columns[f"ema_{params[0]}"] = EMAIndicator(close, int(params[0])).ema_indicator()
        elif kind == "rsi":
            columns[f"rsi_{params[0]}"] = RSIIndicator(close, int(params[0])).rsi()
        elif kind == "macd":
            fast, slow, sign = map(int, params)
            m = MACD(close, window_slow=slow, window_fast=fast, window_sign=sign)
            suffix = _suffix(params, ["12", "26", "9"])
            columns[f"macd{suffix}"] = m.macd()
            columns[f"macd_signal{suffix}"] = m.macd_signal()
            columns[f"macd_hist{suffix}"] = m.macd_diff()
        elif kind == "bb":
            bb = BollingerBands(close, window=int(params[0]), window_dev=float(params[1]))
            suffix = _suffix(params, ["20", "2"])
            columns[f"bb_upper{suffix}"] = bb.bollinger_hband()
            columns[f"bb_middle{suffix}"] = bb.bollinger_mavg()
            columns[f"bb_lower{suffix}"] = bb.bollinger_lband()
        else:
            assert kind == "vwap", kind
    return pd.DataFrame(columns)


def expected_candles(
    ticks: list[Tick], interval: str, tz: str, indicators: str = DEFAULT_INDICATORS
) -> pd.DataFrame:
    """One row per (symbol, start): OHLCV, trades, the ``indicators`` (a STOCKAPP_INDICATORS
    value) and session VWAP of ``ticks`` (those accepted for ``interval``, in arrival order),
    by a pandas resample and ``ta``."""
    if not ticks:
        return pd.DataFrame()
    frame = pd.DataFrame(
        {
            "symbol": [t.symbol for t in ticks],
            "ts": [t.ts for t in ticks],
            "price": [t.price for t in ticks],
            "volume": [t.volume for t in ticks],
        }
    )
    for column in ("open", "high", "low", "close"):
        frame[column] = frame["price"]
    frame["pv"] = frame["price"] * frame["volume"]
    frame["priced"] = [not t.volume_only for t in ticks]
    return _resampled(frame, interval, tz, indicators)


@dataclass(frozen=True)
class OhlcBar:
    """A bar (or a tick: open = high = low = close) as it counts in candles."""

    symbol: str
    ts: int  # epoch ms, the bar's start
    open: float
    high: float
    low: float
    close: float
    volume: float
    volume_only: bool = False  # a tick only (as Tick.volume_only)


def expected_bar_candles(
    bars: list[OhlcBar], interval: str, tz: str, indicators: str = DEFAULT_INDICATORS
) -> pd.DataFrame:
    """As :func:`expected_candles`, for bars (those that count, in arrival order): OHLCV by a
    pandas resample (first open, highest high, lowest low, last close), ``ta``'s indicators of
    the closes, and session VWAP of the typical price ((h + l + c) / 3)."""
    frame = pd.DataFrame(
        [(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars],
        columns=["symbol", "ts", "open", "high", "low", "close", "volume"],
    )
    frame["pv"] = (frame["high"] + frame["low"] + frame["close"]) / 3 * frame["volume"]
    frame["priced"] = [not b.volume_only for b in bars]
    return _resampled(frame, interval, tz, indicators)


def _resampled(frame: pd.DataFrame, interval: str, tz: str, indicators: str) -> pd.DataFrame:
    """``frame``'s rows (symbol, ts, open, high, low, close, volume, pv) as candles."""
    # Open/close by event time; among equal times, by arrival (a stable sort keeps it).
    frame = frame.sort_values("ts", kind="stable")
    frame.index = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    out = []
    for symbol, group in frame.groupby("symbol", sort=True):
        if interval == "1d":
            resampled = group.tz_convert(tz).resample("1D")
        else:
            resampled = group.resample(f"{INTRADAY_MS[interval]}ms", origin="epoch")
        candles = resampled.agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            trades=("close", "count"),
            volume=("volume", "sum"),
            pv=("pv", "sum"),
        )
        if "priced" in group:
            # A window's prices are those of its trades that update the last sale, if it has
            # any; pandas' first/max/min/last skip the volume-only trades' gaps.
            prices = group[["open", "high", "low", "close"]].where(group["priced"], axis=0)
            if interval == "1d":
                tape_resampled = prices.tz_convert(tz).resample("1D")
            else:
                tape_resampled = prices.resample(f"{INTRADAY_MS[interval]}ms", origin="epoch")
            tape = tape_resampled.agg(
                {"open": "first", "high": "max", "low": "min", "close": "last"}
            )
            for column in ("open", "high", "low", "close"):
                candles[column] = tape[column].where(tape[column].notna(), candles[column])
        candles = candles[candles["trades"] > 0]
        starts = [int(ix.value // 1_000_000) for ix in candles.index]
        candles = candles.reset_index(drop=True)
        candles["symbol"] = symbol
        candles["start"] = starts
        candles = pd.concat([candles, ta_indicators(list(candles["close"]), indicators)], axis=1)
        day = [day_window(s, tz)[0] for s in starts]
        cum = candles.groupby(day)[["pv", "volume"]].cumsum()
        candles["vwap"] = (cum["pv"] / cum["volume"]).where(cum["volume"] > 0)
        out.append(candles)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["start"])


# pandas_market_calendars' own calendar of an exchange, where its name for it differs.
_CALENDAR_NAMES = {"XNYS": "NYSE", "XNAS": "NASDAQ"}


def session_segments(exchange: str, hours: str, first: str, last: str) -> pd.DataFrame:
    """The counted stretches of ``exchange``'s trading days from ``first`` to ``last``
    (dates): columns session, open, close, day_open, day_close (epoch ms), straight from
    pandas_market_calendars' schedule (regular: its market_open to market_close; extended:
    pre to market_open, market_open to market_close, market_close to post)."""
    import pandas_market_calendars as mcal

    calendar = mcal.get_calendar(_CALENDAR_NAMES.get(exchange, exchange))
    schedule = calendar.schedule(first, last, start="pre", end="post")

    def ms(column: str) -> list[int]:
        return [int(t.value // 1_000_000) for t in schedule[column]]

    pre, market_open, market_close, post = (
        ms(c) for c in ("pre", "market_open", "market_close", "post")
    )
    rows = []
    for p, o, c, q in zip(pre, market_open, market_close, post, strict=True):
        if hours == "regular":
            rows.append(("regular", o, c, o, c))
        else:
            rows += [("pre", p, o, p, q), ("regular", o, c, p, q), ("post", c, q, p, q)]
    return pd.DataFrame(rows, columns=["session", "open", "close", "day_open", "day_close"])


def expected_session_candles(
    ticks: list[Tick],
    interval: str,
    segments: pd.DataFrame,
    anchor: str,
    indicators: str = DEFAULT_INDICATORS,
) -> pd.DataFrame:
    """As :func:`expected_candles`, with candles cut from trading sessions (``segments``, from
    :func:`session_segments`): ticks outside them count nowhere; an intraday candle is a
    pandas resample of one segment's ticks, from the segment's open (``anchor`` "session") or
    the epoch ("epoch"), cut at the segment's open and close; a ``1d`` candle is a trading
    day's ticks; indicators run over the candles in order, across the gaps; VWAP starts again
    each trading day. Columns as expected_candles', plus ``end``."""
    index = pd.IntervalIndex.from_arrays(segments["open"], segments["close"], closed="left")
    frame = pd.DataFrame(
        {
            "symbol": [t.symbol for t in ticks],
            "ts": [t.ts for t in ticks],
            "price": [t.price for t in ticks],
            "volume": [t.volume for t in ticks],
            "priced": [not t.volume_only for t in ticks],
        }
    )
    frame["segment"] = index.get_indexer(frame["ts"])
    frame = frame[frame["segment"] >= 0].sort_values("ts", kind="stable")
    frame["pv"] = frame["price"] * frame["volume"]
    frame["tape"] = frame["price"].where(frame["priced"])
    frame.index = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    aggregate = {
        "open": ("tape", "first"),
        "high": ("tape", "max"),
        "low": ("tape", "min"),
        "close": ("tape", "last"),
        "any_open": ("price", "first"),
        "any_high": ("price", "max"),
        "any_low": ("price", "min"),
        "any_close": ("price", "last"),
        "trades": ("price", "count"),
        "volume": ("volume", "sum"),
        "pv": ("pv", "sum"),
    }
    out = []
    for symbol, ticks_of in frame.groupby("symbol", sort=True):
        parts = []
        if interval == "1d":
            ticks_of = ticks_of.assign(day=segments["day_open"].to_numpy()[ticks_of["segment"]])
            closes = segments.groupby("day_open")["day_close"].max()
            days = ticks_of.groupby("day", sort=True).agg(**aggregate)
            for day, row in days.iterrows():
                parts.append({**row.to_dict(), "start": int(day), "end": int(closes[day])})
        else:
            size = INTRADAY_MS[interval]
            for number, group in ticks_of.groupby("segment", sort=True):
                seg = segments.iloc[int(number)]
                origin = (
                    pd.Timestamp(int(seg["open"]), unit="ms", tz="UTC")
                    if anchor == "session"
                    else "epoch"
                )
                bars = group.resample(f"{size}ms", origin=origin).agg(**aggregate)
                bars = bars[bars["trades"] > 0]
                for label, row in bars.iterrows():
                    start = int(label.value // 1_000_000)
                    parts.append(
                        {
                            **row.to_dict(),
                            "start": max(start, int(seg["open"])),
                            "end": min(start + size, int(seg["close"])),
                        }
                    )
        candles = pd.DataFrame(parts).sort_values("start").reset_index(drop=True)
        for column in ("open", "high", "low", "close"):
            # A window of volume-only trades alone takes its prices from them.
            candles[column] = candles[column].where(
                candles[column].notna(), candles[f"any_{column}"]
            )
        candles = candles.drop(columns=[f"any_{c}" for c in ("open", "high", "low", "close")])
        candles["trades"] = candles["trades"].astype(int)
        candles["symbol"] = symbol
        candles = pd.concat([candles, ta_indicators(list(candles["close"]), indicators)], axis=1)
        # Each candle's trading day: that of the last segment opening at or before it.
        by_open = segments.sort_values("open", kind="stable")
        at = np.searchsorted(by_open["open"].to_numpy(), candles["start"].to_numpy(), "right")
        assert (at > 0).all(), "a candle before every segment"
        days = [int(d) for d in by_open["day_open"].to_numpy()[at - 1]]
        cum = candles.groupby(days)[["pv", "volume"]].cumsum()
        candles["vwap"] = (cum["pv"] / cum["volume"]).where(cum["volume"] > 0)
        out.append(candles)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["start"])


def assert_candles_match(closed: list, want: pd.DataFrame, interval: str) -> None:
    """Candles of one symbol and ``interval`` (any order) have ``want``'s starts, and its
    open, high, low, close, volume and trades exactly."""
    ours = sorted((c for c in closed if c.interval == interval), key=lambda c: c.start)
    assert [c.start for c in ours] == [int(s) for s in want["start"]], interval
    for candle, (_, row) in zip(ours, want.iterrows(), strict=True):
        got = (candle.open, candle.high, candle.low, candle.close, candle.volume, candle.trades)
        theirs = tuple(row[k] for k in ("open", "high", "low", "close", "volume", "trades"))
        assert got == theirs, (interval, candle.start, got, theirs)


def assert_close_or_null(ours: float | None, theirs: float, where: object) -> None:
    """Our value equals the oracle's within 1e-9, and is null exactly where it is NaN."""
    if math.isnan(theirs):
        assert ours is None, f"{where}: expected null, got {ours}"
    else:
        assert ours is not None, f"{where}: expected {theirs}, got null"
        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9), (where, ours, theirs)


def assert_candle_row(got: object, row: object, where: object) -> None:
    """A stored candle (Cassandra row) has the oracle row's OHLC, volume and trades exactly."""
    ours = (got.open, got.high, got.low, got.close, got.volume, got.trades)
    theirs = tuple(row[k] for k in ("open", "high", "low", "close", "volume", "trades"))
    assert ours == theirs, f"{where}: stored (o, h, l, c, v, n) {ours}, expected {theirs}"


# A crossing closer than this may go either way: ours equal ta's to 1e-9, not exactly.
TIE = 1e-7

# Rules of every kind beside the built-in ones (which the tests take from stockapp).
SIGNAL_RULES = [
    {"name": "above_101", "kind": "crosses_above", "left": "close", "right": 101.0},
    {"name": "ema_cross", "kind": "crosses_below", "left": "ema_12", "right": "ema_26"},
    {"name": "rsi_cool", "kind": "leaves_above", "series": "rsi_14", "level": 70},
    {"name": "rsi_warm", "kind": "leaves_below", "series": "rsi_14", "level": 30},
    {"name": "new_low_5", "kind": "breakout_down", "lookback": 5},
]


def rule_firings(
    rule: dict, frame: pd.DataFrame, indicators: str = DEFAULT_INDICATORS
) -> tuple[pd.Series, pd.Series]:
    """(fires, near_tie) per candle of ``frame`` (OHLCV columns, one row per closed candle in
    order) for a rule in its JSON form (docs/signals.md), by pandas over ta's columns."""
    cols = pd.concat([frame, ta_indicators(list(frame["close"]), indicators)], axis=1)

    def series(operand):
        return cols[operand] if isinstance(operand, str) else pd.Series(float(operand), cols.index)

    kind = rule["kind"]
    if kind.startswith("crosses"):
        diff = series(rule["left"]) - series(rule["right"])
        before = diff.shift(1)
        fires = (
            (before <= 0) & (diff > 0) if kind == "crosses_above" else (before >= 0) & (diff < 0)
        )
        tie = (diff.abs() < TIE) | (before.abs() < TIE)
    elif kind.startswith(("enters", "leaves")):
        diff = series(rule["series"]) - rule["level"]
        inside = diff > 0 if kind.endswith("above") else diff < 0
        was = inside.shift(1, fill_value=False)
        defined = diff.notna() & diff.shift(1).notna()
        fires = defined & ((~was & inside) if kind.startswith("enters") else (was & ~inside))
        tie = (diff.abs() < TIE) | (diff.shift(1).abs() < TIE)
    else:
        n = rule["lookback"]
        if kind == "breakout_up":
            fires = cols["close"] > cols["high"].rolling(n).max().shift(1)
        else:
            fires = cols["close"] < cols["low"].rolling(n).min().shift(1)
        tie = pd.Series(False, cols.index)
    return fires.fillna(False).astype(bool), tie.fillna(False).astype(bool)


def expected_signals(
    bars: pd.DataFrame, rules: list[dict], indicators: str = DEFAULT_INDICATORS
) -> tuple[set, set]:
    """(firings, near ties) as (symbol, rule name, candle start) of ``rules`` (JSON form, each
    applied to every symbol) over ``bars``: closed candles of one interval with ``symbol``,
    ``start`` and OHLCV columns, as expected_candles gives them."""
    fires: set = set()
    ties: set = set()
    for symbol, frame in bars.groupby("symbol"):
        frame = frame.sort_values("start").reset_index(drop=True)
        ohlcv = frame[["open", "high", "low", "close", "volume"]]
        for rule in rules:
            fired, tie = rule_firings(rule, ohlcv, indicators)
            fires |= {(symbol, rule["name"], int(s)) for s in frame["start"][fired]}
            ties |= {(symbol, rule["name"], int(s)) for s in frame["start"][tie]}
    return fires, ties
