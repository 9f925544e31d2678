"""Every worker reloads the users' signal rules now and then: a rule created or deleted
through any worker's API is in force everywhere within STOCKAPP_RULES_REFRESH_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stockapp.app import app
from stockapp.settings import get_settings

log = logging.getLogger(__name__)


async def reload_rules() -> bool:
    """True if the rules in force changed. A failed read keeps the rules as they were."""
    try:
        specs = await app.rule_store.load()
    except Exception as exc:  # noqa: BLE001 - Cassandra away: the rules stay, retried next tick
        log.warning("could not reload the signal rules: %s", type(exc).__name__)
        return False
    changed = app.rule_book.replace(specs)
    if changed:
        log.info("signal rules in force: %d (%d of users)", len(app.rule_book.rules), len(specs))
        _forget_retired()
    return changed


def _forget_retired() -> None:
    """Drop the firing counts of rules no longer in force: /metrics and /stats show a series
    per rule in force, and the counts would otherwise grow with every rule name ever used."""
    proc = app.processor
    if proc is None:
        return
    names = {spec.name for spec in app.rule_book.rules}
    for name in [n for n in proc.signals_by_rule if n not in names]:
        del proc.signals_by_rule[name]


def fired_in_force() -> dict[str, int]:
    """Signals this worker fired, by rule in force (/metrics and /stats). A batch that began
    before a rule was deleted may count it after the reload dropped it: not shown."""
    proc = app.processor
    if proc is None:
        return {}
    names = {spec.name for spec in app.rule_book.rules}
    return {name: n for name, n in sorted(proc.signals_by_rule.items()) if name in names}


async def load_rules(
    tries: int = 8, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
) -> None:
    """The users' rules, before the processor takes its first batch: a batch stored while
    they are not in force would never fire them on its candles. Tried again with a growing
    pause (0.5 s to 10 s, about 40 s in all); the last failure is raised (the worker stops)."""
    for attempt in range(tries):
        try:
            specs = await app.rule_store.load()
        except Exception as exc:
            if attempt == tries - 1:
                raise
            log.warning("could not load the signal rules (%s); trying again", type(exc).__name__)
            await sleep(min(0.5 * 2**attempt, 10.0))
        else:
            if app.rule_book.replace(specs):
                _forget_retired()
            return


@app.timer(interval=get_settings().rules_refresh_seconds, on_leader=False)
async def refresh_rules() -> None:
    await reload_rules()
