"""Backfill seeds: streaming state computed from history, stored in ``state_seeds``."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson

from stockapp.sinks.cassandra import execute


class SeedStore:
    def __init__(self, session: Any, concurrency: int = 32) -> None:
        self.session = session
        self.concurrency = concurrency
        self.select = session.prepare("SELECT state FROM state_seeds WHERE symbol = ?")
        self.insert = session.prepare(
            "INSERT INTO state_seeds (symbol, state, source, updated_at) VALUES (?, ?, ?, ?)"
        )

    async def load(self, symbols: list[str]) -> dict[str, dict]:
        """Seeds of those symbols that have one; at most ``concurrency`` queries in flight."""
        results: list = []
        for i in range(0, len(symbols), self.concurrency):
            chunk = symbols[i : i + self.concurrency]
            results += await asyncio.gather(
                *(execute(self.session, self.select, (s,)) for s in chunk)
            )
        out = {}
        for symbol, rows in zip(symbols, results, strict=True):
            row = rows[0] if rows else None  # the driver's callback gets a list of rows
            if row is not None and row.state:
                out[symbol] = orjson.loads(row.state)
        return out

    def save(self, states: dict[str, dict], source: str) -> None:
        now = dt.datetime.now(dt.UTC)
        for symbol, state in states.items():
            self.session.execute(self.insert, (symbol, orjson.dumps(state).decode(), source, now))
