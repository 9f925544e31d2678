"""With STOCKAPP_SIGNAL_WEBHOOK_URL set, each worker runs a webhook notifier: together they
share the signals topic's partitions in a consumer group of their own."""

from __future__ import annotations

import asyncio
import logging

from stockapp.app import app
from stockapp.settings import get_settings
from stockapp.sinks.webhook import Notifier

log = logging.getLogger(__name__)
notifier = Notifier(get_settings())


@app.task
async def post_signals() -> None:
    if not get_settings().signal_webhook_url:
        return
    while True:
        try:
            await notifier.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Kafka away: start again, from the commits
            log.warning("the signal webhook notifier stopped (%s); restarting", type(exc).__name__)
            await asyncio.sleep(2.0)
