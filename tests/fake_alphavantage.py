"""A local stand-in for the Alpha Vantage API, serving its documented response formats.

Each (function, symbol) has a queue of bodies; the last one repeats. Requests are recorded.
"""

from __future__ import annotations

import json
from collections import defaultdict

from aiohttp import web

RATE_LIMIT_NOTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency "
    "is 5 calls per minute and 25 calls per day."
}
RATE_LIMIT_INFO = {
    "Information": "We have detected your API key as ... and our standard API "
    "rate limit is 25 requests per day."
}
BAD_SYMBOL = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for GLOBAL_QUOTE."
}


def global_quote(symbol: str, price: float, volume: int, day: str) -> dict:
    return {
        "Global Quote": {
            "01. symbol": symbol,
            "02. open": f"{price - 1:.4f}",
            "03. high": f"{price + 1:.4f}",
            "04. low": f"{price - 2:.4f}",
            "05. price": f"{price:.4f}",
            "06. volume": str(volume),
            "07. latest trading day": day,
            "08. previous close": f"{price - 0.5:.4f}",
            "09. change": "0.5000",
            "10. change percent": "0.2000%",
        }
    }


def intraday(symbol: str, interval: str, bars: dict[str, tuple]) -> dict:
    return {
        "Meta Data": {
            "1. Information": f"Intraday ({interval}) open, high, low, close prices and volume",
            "2. Symbol": symbol,
            "3. Last Refreshed": max(bars),
            "4. Interval": interval,
            "5. Output Size": "Compact",
            "6. Time Zone": "US/Eastern",
        },
        f"Time Series ({interval})": {
            stamp: {
                "1. open": f"{o:.4f}",
                "2. high": f"{h:.4f}",
                "3. low": f"{lo:.4f}",
                "4. close": f"{c:.4f}",
                "5. volume": str(v),
            }
            for stamp, (o, h, lo, c, v) in sorted(bars.items(), reverse=True)
        },
    }


class FakeAlphaVantage:
    def __init__(self) -> None:
        self.responses: dict[tuple[str, str], list] = defaultdict(list)
        self.requests: list[dict] = []

    def queue(self, function: str, symbol: str, *bodies: object) -> None:
        self.responses[(function, symbol)].extend(bodies)

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.requests.append(params)
        queue = self.responses.get((params.get("function", ""), params.get("symbol", "")))
        if not queue:
            return web.json_response(BAD_SYMBOL)
        body = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(body, int):  # an HTTP status
            return web.Response(status=body, text="server error")
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/query", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/query"

    async def stop(self) -> None:
        await self.runner.cleanup()
