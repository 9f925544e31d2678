"""Reads of the API from Cassandra: symbols, the latest quote, candle history."""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Any

import orjson
from cassandra.util import Date

from stockapp.settings import Settings
from stockapp.sinks.cassandra import execute, execute_all
from stockapp.sinks.cassandra_session import LazySession
from stockapp.sinks.layout import candle_bucket, quote_day
from stockapp.tables.signals.signal import Signal
from stockapp.timestamps import datetime_to_ms, ms_to_datetime
from stockapp.web.candle_cache import CandleCache, Encoded
from stockapp.web.params import CandleQuery, SignalQuery
from stockapp.web.payload import from_row

SIGNAL_COLUMNS = "start, interval, rule, kind, end, vals"
# Rows a signals query reads at most before filtering by interval and rule, and the days back
# it looks for signals of every symbol.
SIGNAL_SCAN_ROWS = 5000
SIGNAL_SCAN_DAYS = 7
# How long the list of symbols is reused: /api/symbols reads the whole table once per this.
SYMBOLS_TTL_S = 5.0


class Reader:
    def __init__(
        self,
        settings: Settings,
        cassandra: LazySession | None = None,
        cache: CandleCache | None = None,
    ) -> None:
        self.settings = settings
        self.interval_ms = settings.interval_ms
        self.outputs = settings.indicator_outputs
        self.calendar = settings.calendar
        self.cassandra = cassandra or LazySession(settings)
        self._session: Any = None
        self._lock = asyncio.Lock()
        self._prepared: dict[str, Any] = {}
        self._symbols: tuple[float, list[dict]] | None = None  # (read at, symbols)
        self.cache = cache  # closed candles of the symbols this worker owns

    async def session(self) -> Any:
        async with self._lock:
            if self._session is None:
                session = await self.cassandra.get()
                columns = ", ".join(
                    ["start", "open", "high", "low", "close", "volume", "closed", *self.outputs]
                )
                candles = (
                    f"SELECT {columns} FROM candles WHERE symbol = ? AND interval = ? "
                    "AND bucket = ? AND start >= ? AND start < ? ORDER BY start DESC LIMIT ?"
                )
                self._prepared = {
                    "symbols": session.prepare("SELECT symbol, last_price, last_ts FROM symbols"),
                    "symbol": session.prepare(
                        "SELECT symbol, last_price, last_ts FROM symbols WHERE symbol = ?"
                    ),
                    "quote": session.prepare(
                        "SELECT ts, price, volume, bid, ask, source, session FROM quotes "
                        "WHERE symbol = ? AND day = ? LIMIT 1"
                    ),
                    # Quotes stored before migration 0003 (stockapp/db/migrations).
                    "quote_before_0003": session.prepare(
                        "SELECT ts, price, volume, bid, ask, source FROM stock_prices "
                        "WHERE symbol = ? AND day = ? LIMIT 1"
                    ),
                    "candles": session.prepare(candles),
                    # The buckets (10,000 candles each) that hold the symbol's candles, newest
                    # first (migration 0004): history is read from those, however sparse.
                    "buckets": session.prepare(
                        "SELECT bucket FROM candle_buckets WHERE symbol = ? AND interval = ? "
                        "AND bucket <= ? AND bucket >= ?"
                    ),
                    # Signals (migration 0005): a symbol's, or a UTC day's across symbols.
                    "signals_of": session.prepare(
                        f"SELECT {SIGNAL_COLUMNS}, symbol FROM signals_by_symbol "
                        "WHERE symbol = ? AND start < ? LIMIT ?"
                    ),
                    "signals_on": session.prepare(
                        f"SELECT {SIGNAL_COLUMNS}, symbol FROM signals_by_day "
                        "WHERE day = ? AND start < ? LIMIT ?"
                    ),
                }
                self._session = session
            return self._session

    async def _run(self, name: str, params: tuple = ()) -> list:
        session = await self.session()
        return list(await execute(session, self._prepared[name], params))

    async def symbols(self) -> list[dict]:
        """Every symbol, alphabetical: read once per ``SYMBOLS_TTL_S`` whatever the number of
        clients (the table is keyed by symbol, so Cassandra cannot page it in that order)."""
        now = time.monotonic()
        cached = self._symbols
        if cached is not None and now - cached[0] < SYMBOLS_TTL_S:
            return cached[1]
        session = await self.session()
        rows = await execute_all(session, self._prepared["symbols"])
        symbols = sorted(
            (
                {
                    "symbol": r.symbol,
                    "last_price": r.last_price,
                    "last_time": datetime_to_ms(r.last_ts) // 1000 if r.last_ts else None,
                }
                for r in rows
            ),
            key=lambda s: s["symbol"],
        )
        self._symbols = (now, symbols)
        return symbols

    async def symbols_page(
        self, after: str | None, prefix: str, limit: int
    ) -> tuple[list[dict], str | None]:
        """Up to ``limit`` symbols after ``after`` starting with ``prefix``, and the symbol to
        ask the next page after (None: this is the last)."""
        symbols = await self.symbols()
        names = [s["symbol"] for s in symbols]
        first = bisect.bisect_right(names, after) if after is not None else 0
        first = max(first, bisect.bisect_left(names, prefix))
        page: list[dict] = []
        for entry in symbols[first:]:
            if not entry["symbol"].startswith(prefix) or len(page) == limit:
                break
            page.append(entry)
        more = first + len(page) < len(symbols) and (
            symbols[first + len(page)]["symbol"].startswith(prefix)
        )
        return page, page[-1]["symbol"] if page and more else None

    async def last_tick_ms(self, symbol: str) -> int | None:
        """None: the symbol is unknown."""
        rows = await self._run("symbol", (symbol,))
        if not rows or rows[0].last_ts is None:
            return None
        return datetime_to_ms(rows[0].last_ts)

    async def quote(self, symbol: str) -> dict | None:
        rows = await self._run("symbol", (symbol,))
        if not rows or rows[0].last_ts is None:
            return None
        row = rows[0]
        last_ms = datetime_to_ms(row.last_ts)
        quote = {
            "symbol": symbol,
            "price": row.last_price,
            "time": last_ms / 1000,
            "session": self.calendar.session(last_ms).value,
        }
        day = quote_day(last_ms)
        ticks = await self._run("quote", (symbol, day)) or await self._run(
            "quote_before_0003", (symbol, day)
        )
        # Raw quotes are stored (the default): the full tick, if the newest is the last sale
        # (not a volume-only trade after it, which the symbols row leaves out).
        if ticks and datetime_to_ms(ticks[0].ts) == last_ms:
            tick = ticks[0]
            quote.update(
                price=tick.price,
                time=datetime_to_ms(tick.ts) / 1000,
                volume=tick.volume,
                bid=tick.bid,
                ask=tick.ask,
                source=tick.source,
            )
            stored = getattr(tick, "session", None)  # as the worker's calendar told it
            if stored:
                quote["session"] = stored
        return quote

    def cache_version(self, q: CandleQuery) -> tuple[int, int] | None:
        """What the candle cache has seen of ``q``'s symbol and interval, before a read; None:
        no cache. Only for a symbol this worker owns."""
        return None if self.cache is None else self.cache.version((q.symbol, q.interval))

    async def candles(
        self, q: CandleQuery, last_tick_ms: int, version: tuple[int, int] | None = None
    ) -> list[dict]:
        """:meth:`candles_encoded` as JSON objects."""
        encoded = await self.candles_encoded(q, last_tick_ms, version)
        return [orjson.loads(part) for part in encoded.parts]

    async def candles_encoded(
        self, q: CandleQuery, last_tick_ms: int, version: tuple[int, int] | None = None
    ) -> Encoded:
        """Closed candles stored for ``q``, ascending and encoded: the latest ``limit`` in
        [start, end). ``version``: :meth:`cache_version` taken before ``last_tick_ms`` was
        read, for a symbol this worker owns (None: the candle cache neither answers nor keeps
        the answer)."""
        interval_ms = self.interval_ms[q.interval]
        # Nothing is stored after the symbol's last tick, so the walk starts there at the latest.
        end = last_tick_ms + interval_ms
        if q.end_ms is not None:
            end = min(end, q.end_ms)
        start = 0 if q.start_ms is None else q.start_ms
        if start >= end:
            return Encoded([], [])
        cache = self.cache if version is not None else None
        key = (q.symbol, q.interval)
        if cache is not None:
            hit = cache.get(key, start, end, q.limit)
            if hit is not None:
                return hit
        candles = Encoded.of(await self._read_candles(q, start, end, interval_ms))
        # Kept only when the read reached the open end (every stored closed candle after it
        # is closed here, and told to the cache): a range cut by ``end`` says nothing of later
        # candles.
        open_end = q.end_ms is None or q.end_ms >= last_tick_ms + interval_ms
        if cache is not None and version is not None and open_end:
            cache.fill(key, start, q.limit, candles, version)
        return candles

    async def _read_candles(
        self, q: CandleQuery, start: int, end: int, interval_ms: int
    ) -> list[dict]:
        last = candle_bucket(max(end - 1, 0), interval_ms)
        first = candle_bucket(start, interval_ms)
        buckets = await self._run("buckets", (q.symbol, q.interval, last, first))
        out: list = []
        for row in buckets:
            rows = await self._run(
                "candles",
                (
                    q.symbol,
                    q.interval,
                    row.bucket,
                    ms_to_datetime(start),
                    ms_to_datetime(end),
                    q.limit - len(out),
                ),
            )
            out.extend(rows)
            if len(out) >= q.limit:
                break
        return [from_row(r, self.outputs, q.interval) for r in reversed(out)]

    async def signals(self, q: SignalQuery, now_ms: int) -> list[dict]:
        """Stored signals for ``q``, newest first: a symbol's, or every symbol's over the
        SIGNAL_SCAN_DAYS UTC days before ``before`` (default: now)."""
        before = q.before_ms if q.before_ms is not None else now_ms + 86_400_000

        def wanted(row: Any) -> bool:
            return (q.interval is None or row.interval == q.interval) and (
                q.rule is None or row.rule == q.rule
            )

        out: list[dict] = []
        if q.symbol is not None:
            rows = await self._run(
                "signals_of", (q.symbol, ms_to_datetime(before), SIGNAL_SCAN_ROWS)
            )
            out = [signal_row(r) for r in rows if wanted(r)]
        else:
            day = (before - 1) // 86_400_000
            for back in range(SIGNAL_SCAN_DAYS):
                rows = await self._run(
                    "signals_on",
                    (Date(day - back), ms_to_datetime(before), SIGNAL_SCAN_ROWS - len(out)),
                )
                out.extend(signal_row(r) for r in rows if wanted(r))
                if len(out) >= q.limit:
                    break
        return out[: q.limit]


def signal_row(row: Any) -> dict:
    return Signal(
        row.symbol,
        row.interval,
        row.rule,
        row.kind,
        datetime_to_ms(row.start),
        datetime_to_ms(row.end),
        orjson.loads(row.vals) if row.vals else {},
    ).to_json()
