"""Alpaca's historical minute bars (``GET {data_url}/v2/stocks/bars``), for ``stockapp backfill
--source alpaca``: a chart opened on a live feed gets its history and warm indicators.

Pages are followed with ``next_page_token`` until there is none. A 429 (the free plan allows
200 requests a minute) waits as long as the answer says (``Retry-After``, else
``X-RateLimit-Reset``, else a doubling wait) and asks for the same page again. The key travels
only in the ``APCA-API-*`` headers, never in a URL, a log line or an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from stockapp.errors import StockappError
from stockapp.models import Quote
from stockapp.sources.alpaca import parse_bar

log = logging.getLogger(__name__)

PAGE_LIMIT = 10_000  # the most the endpoint gives per page (counted over all symbols)
MAX_RATE_LIMITED = 8  # 429s in a row before giving up
MAX_WAIT_SECONDS = 120.0


def rfc3339(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def retry_after(headers: Any, waited: int, now: float) -> float:
    """Seconds to wait after a 429: what the answer says, else a doubling wait."""
    for name in ("Retry-After", "X-RateLimit-Reset", "X-Ratelimit-Reset"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if name != "Retry-After":
            seconds -= now  # a reset time, epoch seconds
        # At least a second: a reset already past (clocks differ) must not spend the retries.
        return min(MAX_WAIT_SECONDS, max(1.0, seconds))
    return min(MAX_WAIT_SECONDS, 2.0**waited)


class AlpacaHistory:
    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        feed: str = "iex",
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        if not key_id or not secret:
            raise StockappError(
                "alpaca: no key: set APCA_API_KEY_ID and APCA_API_SECRET_KEY (or their "
                "STOCKAPP_ALPACA_API_*_FILE)"
            )
        self.base_url = base_url.rstrip("/")
        self._headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
        self.feed = feed
        self.timeout = timeout
        self.sleep = sleep
        self.page_limit = page_limit
        self.pages = 0
        self.rate_limited = 0

    def __repr__(self) -> str:  # never show the key
        return f"AlpacaHistory({self.base_url!r})"

    async def bars(self, symbols: list[str], start_ms: int, end_ms: int) -> list[Quote]:
        """The minute bars of ``symbols`` starting in ``[start_ms, end_ms)``, oldest first."""
        import aiohttp

        params = {
            "symbols": ",".join(symbols),
            "timeframe": "1Min",
            "start": rfc3339(start_ms),
            "end": rfc3339(end_ms - 1),  # the endpoint's end is inclusive
            "limit": str(self.page_limit),
            "feed": self.feed,
            "adjustment": "raw",
            "sort": "asc",
        }
        quotes: list[Quote] = []
        token: str | None = None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers) as session:
            while True:
                page = await self._page(
                    session, {**params, "page_token": token} if token else params
                )
                for symbol, items in (page.get("bars") or {}).items():
                    for item in items if isinstance(items, list) else []:
                        bar = parse_bar({**item, "S": symbol}) if isinstance(item, dict) else None
                        if bar is None:
                            raise StockappError(
                                f"alpaca: an unreadable bar of {symbol}: {item!r:.120}"
                            )
                        if start_ms <= bar.ts < end_ms:
                            quotes.append(bar)
                token = page.get("next_page_token")
                if not token:
                    break
        quotes.sort(key=lambda q: (q.ts, q.symbol))
        return quotes

    async def _page(self, session: Any, params: dict[str, str]) -> dict:
        import aiohttp

        url = f"{self.base_url}/v2/stocks/bars"
        waited = 0
        while True:
            try:
                async with session.get(url, params=params) as response:
                    if response.status == 429:
                        self.rate_limited += 1
                        if waited >= MAX_RATE_LIMITED:
                            raise StockappError(
                                "alpaca: still rate limited after waiting; try later"
                            )
                        delay = retry_after(response.headers, waited, time.time())
                        waited += 1
                        log.warning("alpaca: rate limited (HTTP 429); waiting %.1f s", delay)
                        await self.sleep(delay)
                        continue
                    body = await response.json(content_type=None)
                    status = response.status
            except aiohttp.ClientError as exc:
                raise StockappError(f"alpaca: {url}: {type(exc).__name__}") from None
            except ValueError:
                raise StockappError(f"alpaca: {url}: the answer is not JSON") from None
            if status in (401, 403):
                raise StockappError(
                    f"alpaca: the key was refused (HTTP {status}): check APCA_API_KEY_ID and "
                    "APCA_API_SECRET_KEY"
                )
            if status != 200 or not isinstance(body, dict):
                message = body.get("message") if isinstance(body, dict) else None
                raise StockappError(f"alpaca: HTTP {status}: {str(message or body)[:200]}")
            self.pages += 1
            return body
