"""The rules API: ``GET/POST /api/rules``, ``GET/DELETE /api/rules/{name}`` (docs/web.md).

Rules are validated here (the error names the field), stored in Cassandra and put in force on
this worker at once; the other workers pick them up on their next reload (agents/rules.py).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from faust.web import Request, Response

from stockapp.agents.rules import reload_rules
from stockapp.app import app
from stockapp.settings import get_settings
from stockapp.sinks.rules import RuleExists, RuleLimit, RulesBusy
from stockapp.tables.signals.spec import BUILT_IN, RULE_NAME, RuleError, RuleSpec, parse_rule
from stockapp.web.http import ApiView, Busy, Conflict, NotFound, aiohttp_request, cors_headers
from stockapp.web.params import BadRequest


def rule_json(spec: RuleSpec) -> dict[str, Any]:
    return {**spec.to_json(), "builtin": spec in app.rule_book.built_in}


def _named(name: str) -> str:
    """The path's name, or NotFound for one no rule can have (without asking Cassandra)."""
    if not RULE_NAME.fullmatch(name):
        raise NotFound(f"no rule named {name[:40]!r}")
    return name


def _built_in(name: str) -> bool:
    # Every built-in rule's name, also of those not in force (their series not configured,
    # STOCKAPP_BUILTIN_RULES=false): a user rule of that name would lose to the built-in one
    # the day it is in force again.
    return any(spec.name == name for spec in BUILT_IN)


async def _create(body: bytes) -> dict[str, Any]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"not JSON: {exc}") from None
    try:
        settings = get_settings()
        spec = parse_rule(raw, settings.intervals, settings.indicator_outputs)
    except RuleError as exc:
        raise BadRequest(str(exc)) from None
    if _built_in(spec.name):
        raise Conflict(f"name: {spec.name!r} is a built-in rule's")
    try:
        # The limits (how many rules, their lookbacks summed) are checked by the store, in
        # the write itself: a count this worker loaded let concurrent creates all pass.
        await app.rule_store.create(spec, int(time.time() * 1000))
    except RuleExists:
        raise Conflict(f"name: a rule named {spec.name!r} exists; delete it first") from None
    except RuleLimit as exc:
        raise Conflict(str(exc)) from None
    except RulesBusy as exc:
        raise Busy(str(exc)) from None
    await reload_rules()
    return rule_json(spec)


@app.page("/api/rules")
class Rules(ApiView):
    async def get(self, request: Request) -> Response:
        async def handler() -> Any:
            await reload_rules()  # what is stored now, not as of the last reload
            return {"rules": [rule_json(spec) for spec in app.rule_book.rules]}

        return await self.respond(request, handler)

    async def post(self, request: Request) -> Response:
        if aiohttp_request(request).content_type != "application/json":
            # Also what keeps another site's page from creating rules: a cross-origin JSON
            # POST needs a CORS preflight, which only STOCKAPP_CORS_ORIGINS pass.
            return self.json(
                {"error": "send the rule as Content-Type: application/json"},
                status=415,
                headers=cors_headers(request),
            )
        body = await request.read()
        return await self.respond(request, _create, body, status=201)


@app.page("/api/rules/{name}")
class Rule(ApiView):
    async def get(self, request: Request, name: str) -> Response:
        async def handler() -> Any:
            await reload_rules()
            spec = app.rule_book.get(_named(name))
            if spec is None:
                raise NotFound(f"no rule named {name[:40]!r}")
            return rule_json(spec)

        return await self.respond(request, handler)

    async def delete(self, request: Request, name: str) -> Response:
        async def handler() -> Any:
            if _built_in(_named(name)):
                raise Conflict(
                    f"{name!r} is built in; STOCKAPP_BUILTIN_RULES=false turns those off"
                )
            try:
                deleted = await app.rule_store.delete(name)
            except RulesBusy as exc:
                raise Busy(str(exc)) from None
            if not deleted:
                raise NotFound(f"no rule named {name[:40]!r}")
            await reload_rules()
            return {"deleted": name}

        return await self.respond(request, handler)
