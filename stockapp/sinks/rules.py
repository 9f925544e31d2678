"""Users' signal rules in Cassandra (table ``user_signal_rules``, migration 0006): created,
listed and deleted by the API, reloaded by every worker (agents/rules.py).

All users' rules are one partition (``book = 'users'``) whose static columns hold how many
there are and their lookbacks summed. A create or a delete changes the rule's row and those
totals in one conditional batch (a lightweight transaction) that applies only if the totals
are still the ones the worker checked: whatever the concurrency, through any number of
workers, the limits of stockapp/tables/signals/limits.py hold (docs/signals.md, "Limits", says
why this and not a count beside the rules or insert-then-recount).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime
from typing import Any

import orjson

from stockapp.settings import Settings
from stockapp.sinks.cassandra import execute, execute_all
from stockapp.sinks.cassandra_session import LazySession
from stockapp.tables.signals.limits import MAX_TOTAL_LOOKBACK, MAX_USER_RULES
from stockapp.tables.signals.spec import RuleError, RuleSpec, lookback_of, parse_rule

log = logging.getLogger(__name__)

BOOK = "users"  # the one partition
# Conditional writes in a row that lost to another worker's before a request gives up. Each
# loss means another write went through, so this is only reached under a flood of them.
MAX_TRIES = 50
_EPOCH = datetime(1970, 1, 1)


class RuleExists(LookupError):
    pass


class RuleLimit(Exception):
    """The rule would take the users' rules past a limit; the message names it."""


class RulesBusy(RuntimeError):
    """Lost the race for the rules' partition :data:`MAX_TRIES` times in a row."""


class RuleStore:
    def __init__(self, settings: Settings, cassandra: LazySession) -> None:
        self.settings = settings
        self.cassandra = cassandra
        self._session: Any = None
        self._lock = asyncio.Lock()
        # One create or delete at a time on this worker: the partition's lightweight
        # transactions then contend between workers only, not between a worker's requests.
        self._writing = asyncio.Lock()
        self._prepared: dict[str, Any] = {}
        self._refused: set[str] = set()  # stored rules already reported as unusable

    async def session(self) -> Any:
        async with self._lock:
            if self._session is None:
                from cassandra import ConsistencyLevel

                session = await self.cassandra.get()
                table = "user_signal_rules"
                one = session.prepare(
                    f"SELECT spec, rules, lookback FROM {table} WHERE book = ? AND name = ?"
                )
                # Read through Paxos: settles a write whose outcome a timeout left unknown.
                one.consistency_level = ConsistencyLevel.SERIAL
                totals = f"UPDATE {table} SET rules = ?, lookback = ? WHERE book = ? "
                totals += "IF rules = ? AND lookback = ?"
                self._prepared = {
                    "all": session.prepare(
                        f"SELECT name, spec, created FROM {table} WHERE book = ?"
                    ),
                    "totals": session.prepare(
                        f"SELECT rules, lookback FROM {table} WHERE book = ? LIMIT 1"
                    ),
                    "one": one,
                    "create": session.prepare(
                        f"BEGIN BATCH INSERT INTO {table} (book, name, spec, created) "
                        f"VALUES (?, ?, ?, ?) IF NOT EXISTS; {totals}; APPLY BATCH"
                    ),
                    "delete": session.prepare(
                        f"BEGIN BATCH DELETE FROM {table} WHERE book = ? AND name = ? "
                        f"IF spec = ?; {totals}; APPLY BATCH"
                    ),
                }
                self._session = session
            return self._session

    async def load(self) -> list[RuleSpec]:
        """The stored rules that are valid under the current settings, oldest first. One that
        is not (an interval or series no longer configured), or that would pass the limits
        (rules stored before they were enforced), is left out and reported once."""
        session = await self.session()
        rows = await execute_all(session, self._prepared["all"], (BOOK,))
        stored = sorted(
            (row for row in rows if row.name is not None),  # the static row alone: no rules
            key=lambda row: (row.created or _EPOCH, row.name),
        )
        specs: list[RuleSpec] = []
        lookback = 0
        for row in stored:
            try:
                raw = orjson.loads(row.spec)
                spec = parse_rule(raw, self.settings.intervals, self.settings.indicator_outputs)
            except (RuleError, orjson.JSONDecodeError) as exc:
                self._report(row.name, str(exc))
                continue
            cost = lookback_of(raw)
            if len(specs) >= MAX_USER_RULES or lookback + cost > MAX_TOTAL_LOOKBACK:
                self._report(row.name, "the users' rules before it take up the limits")
                continue
            specs.append(spec)
            lookback += cost
        return specs

    def _report(self, name: str, why: str) -> None:
        if name not in self._refused:
            self._refused.add(name)
            log.warning("stored rule %s is not used: %s", name, why)

    async def create(self, spec: RuleSpec, now_ms: int) -> None:
        """Raises RuleExists if a rule of that name is stored already, RuleLimit if the rule
        would pass a limit, RulesBusy if other workers' writes kept winning."""
        from cassandra import OperationTimedOut, WriteTimeout

        session = await self.session()
        raw = spec.to_json()
        body, cost = orjson.dumps(raw).decode(), lookback_of(raw)
        # Refused at once when the limits are reached, without queueing behind this worker's
        # other writes; a rule that fits is checked again by the write itself.
        await self._check(session, spec.name, await self._totals(session), cost)
        async with self._writing:
            totals = await self._totals(session)
            for _ in range(MAX_TRIES):
                rules, lookback = await self._check(session, spec.name, totals, cost)
                values = (BOOK, spec.name, body, now_ms, rules + 1, lookback + cost, BOOK)
                try:
                    rows = await execute(session, self._prepared["create"], (*values, *totals))
                except (WriteTimeout, OperationTimedOut):
                    # Applied or not: the serial read settles it.
                    found = await self._one(session, spec.name)
                    if found is not None:
                        if found.spec == body:
                            return
                        raise RuleExists(spec.name) from None
                    await asyncio.sleep(random.uniform(0.01, 0.1))
                    totals = await self._totals(session)
                    continue
                if _applied(rows):
                    return
                # Not applied: the name is taken, or another write changed the totals, which
                # the answer carries (the next try checks them).
                if any(getattr(row, "name", None) == spec.name for row in rows):
                    raise RuleExists(spec.name)
                totals = (getattr(rows[0], "rules", None), getattr(rows[0], "lookback", None))
        raise RulesBusy("the users' rules are being changed by many requests; try again")

    async def delete(self, name: str) -> bool:
        """False if there was no such rule."""
        from cassandra import OperationTimedOut, WriteTimeout

        session = await self.session()
        async with self._writing:
            tried = False
            for _ in range(MAX_TRIES):
                found = await self._one(session, name)
                if found is None:
                    return tried  # gone: by our write that timed out, or not there at all
                cost = lookback_of(_json(found.spec))
                rules = max((found.rules or 0) - 1, 0)
                lookback = max((found.lookback or 0) - cost, 0)
                values = (BOOK, name, found.spec, rules, lookback, BOOK)
                try:
                    rows = await execute(
                        session, self._prepared["delete"], (*values, found.rules, found.lookback)
                    )
                except (WriteTimeout, OperationTimedOut):
                    tried = True
                    await asyncio.sleep(random.uniform(0.01, 0.1))
                    continue
                if _applied(rows):
                    return True
        raise RulesBusy("the users' rules are being changed by many requests; try again")

    async def _totals(self, session: Any) -> tuple[int | None, int | None]:
        """The stored count and lookback, as stored (None before the first rule): the values
        a conditional write compares with."""
        rows = await execute(session, self._prepared["totals"], (BOOK,))
        return (rows[0].rules, rows[0].lookback) if rows else (None, None)

    async def _one(self, session: Any, name: str) -> Any:
        rows = await execute(session, self._prepared["one"], (BOOK, name))
        return rows[0] if rows else None

    async def _check(
        self, session: Any, name: str, totals: tuple[int | None, int | None], cost: int
    ) -> tuple[int, int]:
        """The totals as numbers, or RuleLimit naming the limit the rule would pass
        (RuleExists first if the name is taken: the answer that tells the user more)."""
        rules, lookback = totals[0] or 0, totals[1] or 0
        refusal = ""
        if rules >= MAX_USER_RULES:
            refusal = (
                f"there are {rules} users' rules, the most there may be (MAX_USER_RULES = "
                f"{MAX_USER_RULES}); delete one first"
            )
        elif lookback + cost > MAX_TOTAL_LOOKBACK:
            refusal = (
                f"lookback: the users' rules would look back {lookback + cost:,} candles in "
                f"all, more than the limit of {MAX_TOTAL_LOOKBACK:,} (MAX_TOTAL_LOOKBACK; each "
                f"breakout keeps that many values in every symbol's state); "
                f"{max(MAX_TOTAL_LOOKBACK - lookback, 0):,} are left"
            )
        if refusal:
            if await self._one(session, name) is not None:
                raise RuleExists(name)
            raise RuleLimit(refusal)
        return rules, lookback


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}


def _applied(rows: list) -> bool:
    """A lightweight transaction's outcome: the first column (``[applied]``) of its one row."""
    return bool(rows) and bool(rows[0][0])
