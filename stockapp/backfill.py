"""``stockapp backfill``: history straight into Cassandra, and a seed for the live stream.

1. The quotes run through the streaming state (:class:`SymbolState`) once. That tells which
   quotes are late for which interval, exactly as the worker would judge them, and leaves the
   state a worker would have at the end of the history: forming candles, indicator state,
   watermark. That state is stored as the symbol's seed (``state_seeds``); a worker that has
   no state for the symbol starts from it, so live candles continue the history's indicators.
2. The closed candles are computed in batch with pandas and ``ta`` (:mod:`stockapp.history`)
   and written with the idempotent Cassandra sink. Candles still forming at the end of the
   history are not written: they live on in the seed.

Running it twice writes the same rows and the same seeds.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from stockapp import history
from stockapp.db.migrate import require_current
from stockapp.models import Quote
from stockapp.settings import Settings
from stockapp.sinks.cassandra import CassandraSink
from stockapp.sinks.cassandra_session import connect
from stockapp.sinks.seeds import SeedStore
from stockapp.tables.candle import Candle
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from stockapp.validation import InvalidQuote, quote_from_mapping


@dataclass
class BackfillResult:
    quotes: int = 0
    rejected: int = 0
    candles: Counter[str] = field(default_factory=Counter)  # by interval
    seeds: dict[str, dict] = field(default_factory=dict)  # symbol -> SymbolState dict
    closed: list[Candle] = field(default_factory=list)

    def line(self) -> str:
        per = ", ".join(f"{i} {n}" for i, n in self.candles.items())
        return (
            f"{self.quotes} quotes -> {sum(self.candles.values())} candles ({per or 'none'}), "
            f"{len(self.seeds)} seeds; {self.rejected} quotes rejected"
        )


def _parse(
    quotes: Iterable[Quote], start_ms: int | None, end_ms: int | None, result: BackfillResult
) -> list[Quote]:
    """The valid quotes within ``[start_ms, end_ms)``. Sources yield typed quotes, but not all
    of them check values (Alpha Vantage's come as the API sent them): the worker's rules
    apply here too, without the future-skew check (this is history)."""
    out = []
    for raw in quotes:
        try:
            quote = quote_from_mapping(raw.to_json())
        except InvalidQuote:
            result.rejected += 1
            continue
        if (start_ms is None or quote.ts >= start_ms) and (end_ms is None or quote.ts < end_ms):
            out.append(quote)
    return out


def _candle(row: dict, interval: str, end: int, names: tuple[str, ...]) -> Candle:
    def value(name: str) -> float | None:
        v = row[name]
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    return Candle(
        symbol=row["symbol"],
        interval=interval,
        start=int(row["start"]),
        end=end,
        open=float(row["open"]),
        high=float(row["high"]),
        low=float(row["low"]),
        close=float(row["close"]),
        volume=float(row["volume"]),
        trades=int(row["trades"]),
        open_ts=int(row["start"]),
        close_ts=end - 1,
        pv=float(row["pv"]),
        closed=True,
        indicators={name: value(name) for name in names},
    )


def compute(
    settings: Settings,
    quotes: Iterable[Quote],
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> BackfillResult:
    """Candles and seeds of ``quotes`` (in arrival order) within ``[start_ms, end_ms)``."""
    result = BackfillResult()
    parsed = _parse(quotes, start_ms, end_ms, result)
    result.quotes = len(parsed)
    spec = CandleSpec.of(settings)
    states: dict[str, SymbolState] = {}
    late: list[tuple[str, ...]] = []
    ignored: list[Candle] = []
    # Negative offsets: the seed's last_offset ends at -1, below any live record's offset.
    first = -len(parsed)
    for offset, quote in enumerate(parsed, start=first):
        state = states.get(quote.symbol)
        if state is None:
            state = states[quote.symbol] = SymbolState(quote.symbol, spec)
            state.last_offset = first - 1
        late.append(state.apply(quote.bar(), offset, ignored).late)
    forming = {
        (c.symbol, c.interval, c.start) for s in states.values() for c in s.forming_candles()
    }
    for interval in spec.intervals:
        accepted = [q for q, lt in zip(parsed, late, strict=True) if interval.name not in lt]
        frame = history.candles(
            accepted, interval, settings.market_timezone, settings.indicator_set
        )
        for row in frame.to_dict("records"):
            start = int(row["start"])
            if (row["symbol"], interval.name, start) in forming:
                continue
            result.closed.append(
                _candle(row, interval.name, interval.end(start), settings.indicator_outputs)
            )
            result.candles[interval.name] += 1
    result.seeds = {symbol: state.to_dict() for symbol, state in states.items()}
    return result


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(
        f"\rbackfill: writing candles [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="" if done < total else "\n",
        file=sys.stderr,
        flush=True,
    )


def store(settings: Settings, result: BackfillResult, source: str, chunk: int = 2000) -> None:
    """Write the candles (idempotent) and the seeds to Cassandra."""
    cluster, session = connect(settings, keyspace=settings.cassandra_keyspace)
    try:
        require_current(session, settings.cassandra_keyspace, settings.indicator_outputs)

        async def write() -> None:
            sink = CassandraSink(
                session,
                settings.interval_ms,
                settings.cassandra_concurrency,
                outputs=settings.indicator_outputs,
            )
            total = len(result.closed)
            for i in range(0, total, chunk):
                await sink.write([], result.closed[i : i + chunk])
                _progress(min(i + chunk, total), total)

        asyncio.run(write())
        SeedStore(session).save(result.seeds, source)
    finally:
        cluster.shutdown()
