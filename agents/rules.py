"""Every worker reloads the users' signal rules now and then: a rule created or deleted
through any worker's API is in force everywhere within STOCKAPP_RULES_REFRESH_SECONDS."""

from __future__ import annotations

import logging

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


@app.timer(interval=get_settings().rules_refresh_seconds, on_leader=False)
async def refresh_rules() -> None:
    await reload_rules()
