"""Users' signal rules in Cassandra (table ``signal_rules``, migration 0005): created, listed
and deleted by the API, reloaded by every worker (agents/rules.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from stockapp.settings import Settings
from stockapp.sinks.cassandra import execute, execute_all
from stockapp.sinks.cassandra_session import LazySession
from stockapp.tables.signals.spec import RuleError, RuleSpec, parse_rule

log = logging.getLogger(__name__)

# Users' rules, all workers together: each closed candle is run through those that apply.
MAX_USER_RULES = 200


class RuleExists(LookupError):
    pass


class RuleStore:
    def __init__(self, settings: Settings, cassandra: LazySession) -> None:
        self.settings = settings
        self.cassandra = cassandra
        self._session: Any = None
        self._lock = asyncio.Lock()
        self._prepared: dict[str, Any] = {}
        self._refused: set[str] = set()  # stored rules already reported as unusable

    async def session(self) -> Any:
        async with self._lock:
            if self._session is None:
                session = await self.cassandra.get()
                self._prepared = {
                    "all": session.prepare("SELECT name, spec FROM signal_rules"),
                    # A lightweight transaction: two workers creating one name, one wins.
                    "create": session.prepare(
                        "INSERT INTO signal_rules (name, spec, created) VALUES (?, ?, ?) "
                        "IF NOT EXISTS"
                    ),
                    "delete": session.prepare("DELETE FROM signal_rules WHERE name = ? IF EXISTS"),
                }
                self._session = session
            return self._session

    async def load(self) -> list[RuleSpec]:
        """The stored rules that are valid under the current settings. One that is not (an
        interval or series no longer configured) is left out and reported once."""
        session = await self.session()
        rows = await execute_all(session, self._prepared["all"])
        specs = []
        for row in rows:
            try:
                specs.append(
                    parse_rule(
                        orjson.loads(row.spec),
                        self.settings.intervals,
                        self.settings.indicator_outputs,
                    )
                )
            except (RuleError, orjson.JSONDecodeError) as exc:
                if row.name not in self._refused:
                    self._refused.add(row.name)
                    log.warning("stored rule %s is not used: %s", row.name, exc)
        return specs

    async def create(self, spec: RuleSpec, now_ms: int) -> None:
        """Raises RuleExists if a rule of that name is stored already."""
        session = await self.session()
        body = orjson.dumps(spec.to_json()).decode()
        rows = await execute(session, self._prepared["create"], (spec.name, body, now_ms))
        if not _applied(rows):
            raise RuleExists(spec.name)

    async def delete(self, name: str) -> bool:
        """False if there was no such rule."""
        session = await self.session()
        rows = await execute(session, self._prepared["delete"], (name,))
        return _applied(rows)


def _applied(rows: list) -> bool:
    """A lightweight transaction's outcome: the first column (``[applied]``) of its one row."""
    return bool(rows) and bool(rows[0][0])
