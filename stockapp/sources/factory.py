"""One place that turns the command line's choice of source into quotes, for both
``stockapp produce`` (live, paced) and ``stockapp backfill`` (history up to an end time)."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from stockapp.errors import StockappError
from stockapp.models import Quote
from stockapp.settings import Settings
from stockapp.sources.simulator import DEFAULT_SYMBOLS, SessionPacer, Simulator

if TYPE_CHECKING:  # for the annotations; the sources are imported where they are opened
    from stockapp.sources.alphavantage import AlphaVantageClient, Poller
    from stockapp.sources.live_feed import FeedStats

# (index, quote) -> seconds after the start at which to send it; None: as fast as possible
Pacer = Callable[[int, Quote], float] | None
Quotes = Iterable[Quote] | AsyncIterator[Quote]


def at_rate(rate: float) -> Pacer:
    """``rate`` quotes per second."""
    return lambda n, quote: n / rate


def keeping_gaps(speed: float) -> Pacer:
    """The gaps between the quotes' own times, divided by ``speed``."""
    first: list[int] = []

    def due(n: int, quote: Quote) -> float:
        if not first:
            first.append(quote.ts)
        return (quote.ts - first[0]) / 1000 / speed

    return due


@dataclass(frozen=True)
class SourceSpec:
    kind: Literal["simulator", "csv", "alphavantage", "finnhub", "alpaca"] = "simulator"
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    only_symbols: bool = False  # csv: keep only ``symbols`` (they were named explicitly)
    end_ms: int | None = None  # history: event times before this (simulator: required)
    # simulator: tick i at event time start + i * 1000 * speedup / rate; paced at ``rate``/s
    # when live (0: as fast as possible, event times spaced as for 1,000/s)
    seed: int = 42
    rate: float = 0.0
    start_ms: int | None = None
    speedup: float = 1.0
    prices: Mapping[str, float] = field(default_factory=dict)
    # simulator: trade around the clock whatever STOCKAPP_EXCHANGE says (else only in the
    # sessions that count there)
    always_open: bool = False
    # csv
    file: Path | None = None
    bar_seconds: int = 60
    strict: bool = False
    speed: float = 0.0  # live replay keeping the gaps, this many times faster (0: flat out)
    # alphavantage: "quote" / "intraday" polling when live; the full intraday series as history
    mode: Literal["quote", "intraday"] = "quote"
    every: float = 30.0
    bar_interval: str = "1min"
    outputsize: Literal["compact", "full"] = "compact"
    # alpaca: the stream's feed and what it subscribes to (trades, or minute bars)
    feed: Literal["iex", "sip"] = "iex"
    channel: Literal["trades", "bars"] = "trades"


class Source:
    """An opened source: ``quotes`` to iterate (sync or async) with their ``pacer``, inside
    ``async with`` (Alpha Vantage holds an HTTP session); ``report()`` is a line of source
    statistics, or empty."""

    def __init__(self, spec: SourceSpec, settings: Settings, history: bool) -> None:
        self.spec = spec
        self.settings = settings
        self.history = history
        self.quotes: Quotes = ()
        self.pacer: Pacer = None
        self._client: AlphaVantageClient | None = None
        self._poller: Poller | None = None
        self._feed_stats: FeedStats | None = None

    async def __aenter__(self) -> Source:
        spec = self.spec
        if spec.kind == "simulator":
            self._simulator()
        elif spec.kind == "csv":
            self._csv()
        elif spec.kind in ("finnhub", "alpaca"):
            if self.history:
                await self._alpaca_history()
            else:
                self._live_feed()
        else:
            await self._alphavantage()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A live feed's connection is closed now, not when the loop shuts down (its close
        # handshake would hold the summary up).
        aclose = getattr(self.quotes, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._client is not None:
            await self._client.__aexit__(kind, exc, tb)

    def _simulator(self) -> None:
        spec = self.spec
        now = int(time.time() * 1000)
        start = spec.start_ms if spec.start_ms is not None else now
        simulator = Simulator(
            list(spec.symbols),
            spec.seed,
            spec.rate or 1000.0,
            start,
            spec.speedup,
            dict(spec.prices),
            None if spec.always_open else self.settings.calendar,
        )
        if self.history:
            end_ms = spec.end_ms
            if end_ms is None:
                raise StockappError("a simulated history needs an end time")
            self.quotes = itertools.takewhile(lambda q: q.ts < end_ms, simulator.ticks())
        else:
            self.quotes = simulator.ticks(now_ms=lambda: int(time.time() * 1000))
            rate = spec.rate
            calendar = simulator.calendar
            if calendar is not None and not calendar.open_now(now):
                # Said once, or a producer started at night would look hung until the open.
                opens = dt.datetime.fromtimestamp(calendar.next_open(now) / 1000, calendar.tz)
                print(
                    f"simulator: {calendar.name} has no {self.settings.session_hours} session "
                    f"open now: the first ticks are at its next open, {opens.isoformat()} "
                    "(--always-open trades around the clock)",
                    file=sys.stderr,
                    flush=True,
                )
            if rate and calendar is not None:
                self.pacer = SessionPacer(simulator, rate, time.time)
            else:
                self.pacer = at_rate(rate) if rate else None

    def _csv(self) -> None:
        from stockapp.sources.csv_replay import read_quotes

        spec = self.spec
        if spec.file is None or not spec.file.is_file():
            raise StockappError(f"--source csv needs --file with an existing file, got {spec.file}")
        quotes: Iterable[Quote] = read_quotes(spec.file, spec.bar_seconds, spec.strict)
        if spec.only_symbols:
            wanted = set(spec.symbols)
            quotes = (q for q in quotes if q.symbol in wanted)
        self.quotes = quotes
        if not self.history and spec.speed:
            self.pacer = keeping_gaps(spec.speed)

    async def _alphavantage(self) -> None:
        from stockapp.sources.alphavantage import AlphaVantageClient, AlphaVantageError, Poller

        spec = self.spec
        try:
            client = AlphaVantageClient(
                self.settings.alpha_vantage_url, self.settings.alpha_vantage_api_key
            )
        except AlphaVantageError as exc:
            raise StockappError(str(exc)) from None
        self._client = await client.__aenter__()
        if self.history:
            self.quotes = await self._intraday_history(client)
            return
        self._poller = Poller(
            client, list(spec.symbols), spec.every, spec.mode, spec.bar_interval, spec.outputsize
        )
        self.quotes = self._poller.quotes()

    async def _intraday_history(self, client: AlphaVantageClient) -> list[Quote]:
        from stockapp.sources.alphavantage import AlphaVantageError

        bars: list[Quote] = []
        for symbol in self.spec.symbols:
            try:
                bars += await client.intraday(symbol, self.spec.bar_interval, "full")
            except AlphaVantageError as exc:  # one symbol's failure does not stop the others
                print(f"backfill: {exc}", file=sys.stderr)
        return sorted(bars, key=lambda b: b.ts)

    def _live_feed(self) -> None:
        from stockapp.sources.alpaca import AlpacaDialogue
        from stockapp.sources.finnhub import FinnhubDialogue
        from stockapp.sources.live_feed import Dialogue, FeedStats, LiveFeed

        spec, settings = self.spec, self.settings
        stats = self._feed_stats = FeedStats()
        dialogue: Dialogue
        if spec.kind == "finnhub":
            dialogue = FinnhubDialogue(
                settings.finnhub_ws_url,
                settings.finnhub_key,
                list(spec.symbols),
                stats,
                settings.feed_idle_seconds,
            )
        else:
            dialogue = AlpacaDialogue(
                settings.alpaca_ws_url,
                settings.alpaca_key_id,
                settings.alpaca_secret,
                spec.feed,
                list(spec.symbols),
                stats,
                spec.channel,
            )
        feed = LiveFeed(
            dialogue, stats, settings.feed_heartbeat_seconds, settings.feed_backoff_max_seconds
        )
        self.quotes = feed.quotes()

    async def _alpaca_history(self) -> None:
        from stockapp.sources.alpaca_history import AlpacaHistory

        spec, settings = self.spec, self.settings
        if spec.kind != "alpaca":
            raise StockappError("backfill takes --source alpaca, not finnhub (no bar history)")
        if spec.end_ms is None or spec.start_ms is None:
            raise StockappError("backfill --source alpaca needs --from (and --to, or now)")
        history = AlpacaHistory(
            settings.alpaca_data_url, settings.alpaca_key_id, settings.alpaca_secret, spec.feed
        )
        self.quotes = await history.bars(list(spec.symbols), spec.start_ms, spec.end_ms)

    def report(self) -> str:
        if self._feed_stats is not None:
            return self._feed_stats.line(self.spec.kind)
        if self._poller is None:
            return ""
        stats = self._poller.stats
        return (
            f"alphavantage: {stats.unchanged} unchanged, {stats.rate_limited} rate-limited, "
            f"{stats.errors} errors, bad symbols: {', '.join(stats.bad_symbols) or 'none'}"
        )


def open_source(spec: SourceSpec, settings: Settings, *, history: bool = False) -> Source:
    """``async with open_source(...) as source``: live quotes (``history=False``), or the
    source's history up to ``spec.end_ms``."""
    return Source(spec, settings, history)


async def collect(spec: SourceSpec, settings: Settings) -> list[Quote]:
    """A source's whole history, in order (for backfill)."""
    async with open_source(spec, settings, history=True) as source:
        if hasattr(source.quotes, "__aiter__"):
            return [q async for q in source.quotes]
        return list(source.quotes)
