"""The chart's market sessions in real headless Chromium (frontend/e2e/sessions.e2e.mjs), against
a worker on the NYSE's calendar with extended hours whose data is a past trading day of two
symbols from before the pre-market to after the after-hours: shading and the extended-hours
toggle, the time-zone choice, log and percentage scales, a comparison overlay, the legend's
session, the rule form, and a page that fits 1600x1000."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random

import orjson
import pytest

from stockapp.db.migrate import migrate
from tests.helpers import http_json
from tests.integration.test_web import ARTIFACTS, browser_script, finished
from tests.integration.workers import Worker, drop_keyspace, produce, wait_for, worker_env
from tests.streams import NEW_YORK

SYMBOLS = ["XSA", "XSB"]
DAY = dt.date(2026, 12, 4)  # a Friday, a full trading day


def day_of_ticks() -> list[tuple[bytes, bytes]]:
    """A tick every 10 s per symbol from 03:50 to 20:10 New York time: closed time, pre-market,
    the regular session and after-hours."""
    rng = random.Random(41)
    start = dt.datetime.combine(DAY, dt.time(3, 50), NEW_YORK)
    first_ms = int(start.timestamp() * 1000)
    records = []
    prices = {s: 100.0 + 20 * i for i, s in enumerate(SYMBOLS)}
    for step in range(0, (16 * 60 + 20) * 60, 10):
        for symbol in SYMBOLS:
            prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.0005)), 4)
            body = {
                "symbol": symbol,
                "ts": first_ms + step * 1000 + rng.randint(0, 999),
                "price": prices[symbol],
                "volume": rng.randint(1, 40) * 10,
            }
            records.append((symbol.encode(), orjson.dumps(body)))
    return records


@pytest.fixture(scope="module")
def sessions_web(stack, tmp_path_factory):
    unique = os.urandom(5).hex()
    tmp = tmp_path_factory.mktemp("web_sessions")
    keyspace = f"stockapp_websessions_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "websessions",
        unique,
        keyspace,
        tmp / "data",
        STOCKAPP_EXCHANGE="XNYS",
        STOCKAPP_SESSION_HOURS="extended",
        STOCKAPP_IDLE_CLOSE_SECONDS="3",
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_TABLE_STORE="memory",
    )
    records = day_of_ticks()
    asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
    worker = Worker(env, tmp / "worker.log")
    port = int(env["STOCKAPP_WEB_PORT"])
    try:
        worker.start()

        def day_closed() -> bool:  # every symbol's 20:00 close passed: its 1d candle stored
            return all(
                (r := http_json(port, f"/api/candles/{s}?interval=1d"))[0] == 200
                and any(c["closed"] for c in r[1]["candles"])
                for s in SYMBOLS
            )

        wait_for(lambda: worker.stats().get("quotes", 0) >= len(records), 300, "the day", worker)
        wait_for(day_closed, 120, "the day's candles closed", worker)
        yield {"port": port}
    finally:
        worker.stop()
        drop_keyspace(stack, keyspace)


@pytest.mark.browser
def test_browser_shows_sessions_shaded_toggled_compared_and_in_a_chosen_time_zone(
    sessions_web,
):
    script = browser_script(
        sessions_web,
        "sessions.e2e.mjs",
        STOCKAPP_E2E_SYMBOL=SYMBOLS[0],
        STOCKAPP_E2E_COMPARE=SYMBOLS[1],
    )
    finished(script)
    for name in ("sessions-extended.png", "sessions-regular.png", "sessions-compare.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
