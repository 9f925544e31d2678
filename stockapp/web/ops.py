"""Operational endpoints: liveness, readiness, counters."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from faust.web import Request, Response, View

from stockapp.agents.rules import fired_in_force
from stockapp.agents.webhook import notifier
from stockapp.app import app
from stockapp.faust_compat import consumer_state, producer_client, tables_recovered
from stockapp.settings import get_settings
from stockapp.sinks.cassandra import execute
from stockapp.stats import Snapshot
from stockapp.timeouts import within
from stockapp.web.api import candle_cache, reader
from stockapp.web.guard import REFUSED
from stockapp.web.live import hub
from stockapp.web.signals import tail

CHECK_TIMEOUT_S = 3.0
STATS_SAMPLE = 20  # symbols named in /stats; the rest are counted


@app.page("/health")
class Health(View):
    """Process liveness: answers as soon as the web server runs."""

    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok", "app": app.conf.id})


async def _cassandra() -> None:
    session = await reader.session()
    await execute(session, "SELECT release_version FROM system.local")


async def _kafka() -> None:
    # A metadata round trip through the worker's own producer.
    client = producer_client(app)
    if not await client.fetch_all_metadata():
        raise ConnectionError("no metadata")


async def readiness() -> tuple[bool, dict[str, Any]]:
    """Whether the worker is ready, and the checks that say so (errors named): Kafka and
    Cassandra answer, the tables are recovered, and no batch is stuck (failing again and
    again). Shared by /ready and /metrics' ``stockapp_ready``."""
    checks: dict[str, Any] = {
        "tables_recovered": tables_recovered(app),
    }
    stuck = app.view.snapshot().stuck if app.view else None
    checks["batches"] = stuck is None
    if stuck is not None:
        # A batch that keeps failing is retried, never skipped (that would lose data):
        # the operator has to see which one, and why.
        checks["batches_error"] = stuck.to_json()
    for name, check in (("kafka", _kafka), ("cassandra", _cassandra)):
        try:
            await within(CHECK_TIMEOUT_S, check())
            checks[name] = True
        except Exception as exc:  # noqa: BLE001 - whatever the failure, the answer is "not ready"
            checks[name] = False
            checks[f"{name}_error"] = type(exc).__name__
    return all(v for k, v in checks.items() if not k.endswith("_error")), checks


@app.page("/ready")
class Ready(View):
    """Readiness: 503 unless every check of :func:`readiness` passes, naming what is wrong."""

    async def get(self, request: Request) -> Response:
        ready, checks = await readiness()
        return self.json(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )


def _end(topic: str, partition: int) -> int | None:
    try:
        return app.consumer.highwater(TP(topic, partition))
    except ConsumerNotStarted:
        return None


@app.page("/stats")
class Stats(View):
    """Counters of this worker: quotes applied, late, invalid (dead-lettered), duplicates."""

    async def get(self, request: Request) -> Response:
        proc = app.view
        snap = proc.snapshot() if proc else Snapshot.empty()
        # What an operator asks when a candle does not close: which symbols still have a
        # forming candle (how many, and a few by name: a worker may hold tens of thousands),
        # and how far each quotes partition has been processed.
        forming = snap.forming
        # Each assigned quotes partition's end as the consumer last saw it: with
        # ``positions``, whether a partition is behind, or not read at all.
        topic = get_settings().topic_quotes
        ends = {p: _end(topic, p) for p in snap.assigned or ()}
        return self.json(
            {
                "counters": snap.stats.as_dict(),
                "cassandra_retries": snap.cassandra_retries,
                "symbols_loaded": snap.symbols_loaded,
                "forming": {
                    "count": len(forming),
                    "sample": heapq.nsmallest(STATS_SAMPLE, forming),
                },
                "positions": snap.positions,
                "ends": ends,
                "pending_sends": snap.pending_sends,
                # How close this worker is to its bounds (docs/security.md, "Limits").
                "state": _state_bounds(snap),
                "first_batch_at": snap.first_batch_at,
                # Live WebSocket connections open now, the clients dropped as too slow,
                # handshakes refused at a limit (this worker's, a client address's), and
                # records of the signals topic that were not signals (never pushed).
                "live": {
                    "clients": hub.clients,
                    "dropped": hub.dropped,
                    "refused": {"worker": hub.refused["worker"], "client": hub.refused["client"]},
                    "signals_malformed": tail.malformed,
                },
                # /api/candles answered from the candle cache, from Cassandra, and what the
                # cache holds (docs/web.md, "Candle cache").
                "candle_cache": {
                    "hits": candle_cache.hits,
                    "misses": candle_cache.misses,
                    "bytes": candle_cache.bytes,
                    "spans": len(candle_cache.spans),
                },
                # Requests the web guard refused, by reason (docs/security.md).
                "refused": dict(REFUSED),
                # The signal rules in force here (users' ones as of the last reload), the
                # signals this worker fired by rule, and its webhook deliveries.
                "signals": {
                    "rules": len(app.rule_book.rules),
                    "user_rules": len(app.rule_book.user),
                    "fired": fired_in_force(),
                    "webhook": {
                        "delivered": notifier.delivered,
                        "retries": notifier.retries,
                        "dead_lettered": notifier.dead_lettered,
                    },
                },
            }
        )


def _state_bounds(snap: Snapshot) -> dict[str, Any]:
    settings = get_settings()
    largest, symbol = snap.largest_state
    return {
        "budget_bytes": settings.state_max_bytes,
        "largest_bytes": largest,
        "largest_symbol": symbol,
        "symbols": snap.symbols_held,
        "max_symbols": settings.max_symbols,
        "in_memory": snap.symbols_loaded,
        "watched": snap.watched,
    }


def _awaiting(awaitable: Any, limit: int = 24) -> list[str]:
    """The chain of coroutines (and async generators) ``awaitable`` waits through, outermost
    first: what Task.get_stack cannot show for a suspended task."""
    frames: list[str] = []
    while awaitable is not None and len(frames) < limit:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            frames.append(type(awaitable).__name__)
            break
        code = frame.f_code
        frames.append(f"{code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    return frames


@app.page("/debug/tasks")
class Tasks(View):
    """What a stuck worker waits on: each asyncio task of the event loop with the line its
    coroutine is suspended at (innermost last). Read-only; bounded by the number of tasks."""

    async def get(self, request: Request) -> Response:
        tasks = []
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            tasks.append({"task": task.get_name(), "coro": repr(coro)[:120], "at": _awaiting(coro)})
        return self.json(
            {"consumer": consumer_state(app), "tasks": sorted(tasks, key=lambda t: t["coro"])}
        )
