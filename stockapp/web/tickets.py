"""POST /api/ws-ticket: a short-lived ticket for the live WebSocket, for browsers, which cannot
put a bearer token on a WebSocket (stockapp/web/guard.py checks it)."""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response

from stockapp.app import app
from stockapp.web.guard import TICKET_SECONDS, make_ticket
from stockapp.web.http import API_TOKEN, ApiView


@app.page("/api/ws-ticket")
class WsTicket(ApiView):
    """A short-lived ticket for the live WebSocket (``?ticket=``), for browsers."""

    async def post(self, request: Request) -> Response:
        async def handler() -> Any:
            token = API_TOKEN
            if not token:
                return {"ticket": None, "expires_in": None}  # no token: none needed
            return {"ticket": make_ticket(token, time.time()), "expires_in": TICKET_SECONDS}

        return await self.respond(request, handler)
