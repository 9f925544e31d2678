"""The JSON API: symbols, candles (history + the forming candle), the latest quote, OpenAPI."""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import Request, Response

from stockapp.app import app
from stockapp.settings import get_settings
from stockapp.web import describe
from stockapp.web.candle_cache import CandleCache
from stockapp.web.http import ApiView, NotFound, RawJson, owner_url, routed_here
from stockapp.web.params import parse_candle_query, parse_symbol, parse_symbols_query
from stockapp.web.payload import candles_body, encode_candle, from_candle
from stockapp.web.reader import Reader

candle_cache = CandleCache(
    get_settings().candle_cache_bytes,
    get_settings().candle_cache_seconds,
    get_settings().indicator_outputs,
)
app.stored_listeners.append(candle_cache.on_stored)
reader = Reader(get_settings(), app.cassandra, candle_cache)


@app.on_partitions_revoked.connect
async def _forget_cached_candles(app: Any, /, *args: Any, **kwargs: Any) -> None:
    candle_cache.clear()  # a symbol whose partition moves away has candles closed elsewhere


OPENAPI = orjson.dumps(describe.openapi(get_settings()))


def forming_json(symbol: str, interval: str) -> list[dict[str, Any]]:
    """This worker's forming candles of a symbol (empty if it does not own the symbol)."""
    proc = app.view
    if proc is None:
        return []
    return [from_candle(c, values) for c, values in proc.forming(symbol, interval)]


@app.page("/api/symbols")
class Symbols(ApiView):
    async def get(self, request: Request) -> Response:
        async def handler() -> Any:
            q = parse_symbols_query(dict(request.query))
            symbols, following = await reader.symbols_page(q.after, q.prefix, q.limit)
            return {"symbols": symbols, "next": following}

        return await self.respond(request, handler)


@app.page("/api/quote/{symbol}")
class Quote(ApiView):
    async def get(self, request: Request, symbol: str) -> Response:
        async def handler() -> Any:
            name = parse_symbol(symbol)
            quote = await reader.quote(name)
            if quote is None:
                raise NotFound(f"unknown symbol {name}")
            return quote

        return await self.respond(request, handler)


@app.page("/api/candles/{symbol}")
class Candles(ApiView):
    async def get(self, request: Request, symbol: str) -> Response:
        async def handler() -> Any:
            settings = get_settings()
            q = parse_candle_query(symbol, dict(request.query), settings.intervals)
            if not routed_here(request):
                owner = owner_url(q.symbol)
                if owner is not None:
                    forwarded = await self.forward(request, owner)
                    if forwarded is not None:
                        return forwarded
            view = app.view
            # Taken before the last tick is read: a candle stored after it may lie beyond the
            # range the read covers, and must keep that read out of the cache.
            version = reader.cache_version(q) if view is not None and view.owns(q.symbol) else None
            last_ms = await reader.last_tick_ms(q.symbol)
            if last_ms is None:
                raise NotFound(f"unknown symbol {q.symbol}")
            closed = await reader.candles_encoded(q, last_ms, version)
            newest = closed.starts[-1] // 1000 if closed.starts else -1
            parts = list(closed.parts)
            for candle in forming_json(q.symbol, q.interval):
                t_ms = candle["t"] * 1000
                in_range = (q.start_ms is None or t_ms >= q.start_ms) and (
                    q.end_ms is None or t_ms < q.end_ms
                )
                if in_range and candle["t"] > newest:
                    parts.append(encode_candle(candle))
            return RawJson(candles_body(q.symbol, q.interval, parts[-q.limit :]))

        return await self.respond(request, handler)


@app.page("/api/meta")
class Meta(ApiView):
    async def get(self, request: Request) -> Response:
        async def handler() -> Any:
            return describe.meta(get_settings())

        return await self.respond(request, handler)


@app.page("/api/openapi.json")
class OpenApi(ApiView):
    async def get(self, request: Request) -> Response:
        return self.bytes(OPENAPI, content_type="application/json")
