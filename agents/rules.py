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
    return changed


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
            app.rule_book.replace(specs)
            return


@app.timer(interval=get_settings().rules_refresh_seconds, on_leader=False)
async def refresh_rules() -> None:
    await reload_rules()
