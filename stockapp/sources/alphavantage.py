"""Alpha Vantage: ``GLOBAL_QUOTE`` polling and ``TIME_SERIES_INTRADAY`` bars.

What the real API does and how it is handled:
- Over the free tier's limits it answers HTTP 200 with a JSON ``Note`` or ``Information``
  message instead of data: we back off (doubling, capped) and go on with the other symbols.
- A bad symbol gives ``Error Message`` (or an empty ``Global Quote``): reported once, and the
  symbol is not asked for again in this run.
- ``GLOBAL_QUOTE``'s volume is the day's running total: we publish the increment since the last
  poll (0 on the first poll of a run, whose earlier volume we did not see), never the total.
  It has no time of day, so a quote is stamped with the time it was polled.
- A quote that did not change since the last poll is not published again. The newest intraday
  bar may still be forming: published again when its values change (same id: it replaces the
  earlier version in candles still forming, docs/streaming.md).
- Intraday bar times are in the time zone named in ``Meta Data`` (US/Eastern).
The API key is sent only as a request parameter and never appears in a log line or an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from stockapp.models import Quote

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

INTRADAY_SECONDS = {"1min": 60, "5min": 300, "15min": 900, "30min": 1800, "60min": 3600}


class AlphaVantageError(Exception):
    """A response that carries no data; ``str()`` is safe to show (no key, no URL)."""


class RateLimited(AlphaVantageError):
    pass


class BadSymbol(AlphaVantageError):
    pass


@dataclass
class PollStats:
    published: int = 0
    unchanged: int = 0
    rate_limited: int = 0
    errors: int = 0
    bad_symbols: list[str] = field(default_factory=list)


class AlphaVantageClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        if not api_key:
            raise AlphaVantageError("ALPHA_VANTAGE_API_KEY is not set")
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None  # inside ``async with``

    def __repr__(self) -> str:  # never show the key
        return f"AlphaVantageClient({self.base_url!r})"

    async def __aenter__(self) -> AlphaVantageClient:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None  # __aenter__ opened it
        await self._session.close()

    async def _get(self, function: str, symbol: str, **params: str) -> dict:
        import aiohttp

        query = {"function": function, "symbol": symbol, **params, "apikey": self._api_key}
        assert self._session is not None, "the client is used inside `async with`"
        try:
            async with self._session.get(self.base_url, params=query) as response:
                if response.status != 200:
                    raise AlphaVantageError(f"{function} {symbol}: HTTP {response.status}")
                body = await response.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise AlphaVantageError(f"{function} {symbol}: {type(exc).__name__}") from None
        except ValueError:
            raise AlphaVantageError(f"{function} {symbol}: response is not JSON") from None
        if not isinstance(body, dict):
            raise AlphaVantageError(f"{function} {symbol}: unexpected response")
        for limit in ("Note", "Information"):
            if limit in body:
                raise RateLimited(f"{function} {symbol}: {str(body[limit])[:160]}")
        if "Error Message" in body:
            raise BadSymbol(f"{function} {symbol}: {str(body['Error Message'])[:160]}")
        return body

    async def global_quote(self, symbol: str) -> dict:
        """``{"price", "volume" (day's running total), "day"}`` of the latest quote."""
        body = await self._get("GLOBAL_QUOTE", symbol)
        data = body.get("Global Quote") or {}
        if not data:
            raise BadSymbol(f"GLOBAL_QUOTE {symbol}: no quote (unknown symbol?)")
        try:
            return {
                "price": float(data["05. price"]),
                "volume": float(data["06. volume"]),
                "day": data["07. latest trading day"],
            }
        except (KeyError, ValueError):
            raise AlphaVantageError(f"GLOBAL_QUOTE {symbol}: malformed quote") from None

    async def intraday(
        self, symbol: str, interval: str, outputsize: str = "compact"
    ) -> list[Quote]:
        """Bars as quotes (contract of docs/streaming.md), oldest first."""
        body = await self._get(
            "TIME_SERIES_INTRADAY", symbol, interval=interval, outputsize=outputsize
        )
        try:
            zone = ZoneInfo(body["Meta Data"].get("6. Time Zone", "US/Eastern"))
            series = body[f"Time Series ({interval})"]
            bars = []
            for stamp, bar in series.items():
                local = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
                bars.append(
                    Quote(
                        symbol=symbol,
                        ts=int(local.timestamp() * 1000),
                        open=float(bar["1. open"]),
                        high=float(bar["2. high"]),
                        low=float(bar["3. low"]),
                        price=float(bar["4. close"]),
                        volume=float(bar["5. volume"]),
                        bar_seconds=INTRADAY_SECONDS[interval],
                        source="alphavantage",
                    )
                )
        except (KeyError, ValueError, TypeError):
            raise AlphaVantageError(f"TIME_SERIES_INTRADAY {symbol}: malformed series") from None
        return sorted(bars, key=lambda b: b.ts)


def _values(bar: Quote) -> tuple:
    return (bar.open, bar.high, bar.low, bar.price, bar.volume)


@dataclass
class _Last:
    price: float
    volume: float  # the day's running total at the last poll
    day: str


class Poller:
    """Polls each symbol in turn, forever (or ``rounds`` times), yielding quotes to publish."""

    def __init__(
        self,
        client: AlphaVantageClient,
        symbols: list[str],
        every: float,
        mode: str = "quote",
        interval: str = "1min",
        outputsize: str = "compact",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        max_backoff: float = 900.0,
    ) -> None:
        self.client = client
        self.symbols = list(symbols)
        self.every = every
        self.mode = mode
        self.interval = interval
        self.outputsize = outputsize
        self.sleep = sleep
        self.clock = clock
        self.max_backoff = max_backoff
        self.backoff = 0.0
        self.last: dict[str, _Last] = {}
        self.last_bar: dict[str, Quote] = {}  # the newest bar published, by symbol
        self.stats = PollStats()

    async def quotes(self, rounds: int | None = None) -> AsyncIterator[Quote]:
        done = 0
        while rounds is None or done < rounds:
            started = self.clock()
            for symbol in list(self.symbols):
                try:
                    if self.mode == "quote":
                        out = await self._quote(symbol)
                    else:
                        out = await self._bars(symbol)
                    self.backoff = 0.0
                except RateLimited as exc:
                    self.stats.rate_limited += 1
                    self.backoff = min(self.max_backoff, max(60.0, self.backoff * 2))
                    log.warning("rate limited, backing off %.0fs: %s", self.backoff, exc)
                    await self.sleep(self.backoff)
                    continue
                except BadSymbol as exc:
                    self.stats.bad_symbols.append(symbol)
                    self.symbols.remove(symbol)
                    log.warning("skipping %s from now on: %s", symbol, exc)
                    continue
                except AlphaVantageError as exc:
                    self.stats.errors += 1
                    log.warning("%s", exc)
                    continue
                for quote in out:
                    self.stats.published += 1
                    yield quote
            done += 1
            if not self.symbols:
                return
            if rounds is None or done < rounds:
                await self.sleep(max(0.0, self.every - (self.clock() - started)))

    async def _quote(self, symbol: str) -> list[Quote]:
        got = await self.client.global_quote(symbol)
        previous = self.last.get(symbol)
        self.last[symbol] = _Last(got["price"], got["volume"], got["day"])
        if previous is None:
            increment = 0.0  # the volume before our first poll is not ours to publish
        elif got["day"] != previous.day:
            increment = got["volume"]  # a new trading day: its whole total is new
        else:
            if got["price"] == previous.price and got["volume"] == previous.volume:
                self.stats.unchanged += 1
                return []
            increment = max(0.0, got["volume"] - previous.volume)
        return [
            Quote(
                symbol=symbol,
                ts=int(self.clock() * 1000),
                price=got["price"],
                volume=increment,
                source="alphavantage",
            )
        ]

    async def _bars(self, symbol: str) -> list[Quote]:
        bars = await self.client.intraday(symbol, self.interval, self.outputsize)
        last = self.last_bar.get(symbol)
        # The newest bar may still be forming at the source: when a later poll shows it with
        # other values, it is published again under the same id and replaces the earlier one.
        new = [
            b
            for b in bars
            if last is None or b.ts > last.ts or (b.ts == last.ts and _values(b) != _values(last))
        ]
        if new:
            self.last_bar[symbol] = new[-1]
        else:
            self.stats.unchanged += 1
        return new
