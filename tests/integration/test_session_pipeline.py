"""Trading sessions on the real stack: days of ticks around the clock (a holiday, a half-day,
weekends, a daylight-saving change and closed hours in them) through workers on the NYSE's
calendar, one SIGKILLed a
third of the way in and a second joining at two thirds (a rebalance). Every candle stored and
published equals pandas resamples per session over the calendar library's own schedule, and
``ta`` over them (tests/oracle.py); every tick is stored as a raw quote with its session, the
ones outside the counted hours included; the API says each candle's session."""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import signal
from collections import Counter

import orjson
import pandas as pd
import pytest

from stockapp.db.migrate import migrate
from stockapp.sinks.cassandra_session import connect
from tests.helpers import free_port, http_json
from tests.integration.test_pipeline import (
    assert_published_candles,
    assert_stored_candles,
    stored_rows,
)
from tests.integration.workers import (
    Worker,
    drop_keyspace,
    produce,
    wait_for,
    with_indicators,
    worker_env,
)
from tests.oracle import (
    DEFAULT_INDICATORS,
    expected_session_candles,
    session_segments,
)
from tests.streams import week_of_ticks

INTERVALS = ["1m", "5m", "15m", "1h", "1d"]
# Sixteen symbols, a tick every four minutes each, two on each of the 8 partitions (by the
# producer's murmur2; the test checks it), so whichever partitions a joining worker is given,
# it takes symbols over from the first, with their state.
SYMBOLS = ["SES02", "SES09", "SES06", "SES08", "SES15", "SES26", "SES01", "SES11"] + [
    "SES00",
    "SES04",
    "SES17",
    "SES27",
    "SES05",
    "SES14",
    "SES03",
    "SES16",
]
MAX_GAP_MS = 479_000
# (first day, days, trading days): Thanksgiving week (Thu 26 a holiday, Fri 27 a half-day, a
# weekend), and the end of daylight time (Sunday 2026-11-01: the open moves from 13:30 to
# 14:30 UTC) with a weekend.
THANKSGIVING = ("2026-11-23", 8, 5)
FALL_BACK = ("2026-10-29", 6, 4)


def _anchor(setting: str, interval: str) -> str:
    if setting == "auto":  # session for an hour and longer
        return "session" if interval in ("1h", "1d") else "epoch"
    return setting


def _session_of(ts: int, extended: pd.DataFrame) -> str:
    spans = pd.IntervalIndex.from_arrays(extended["open"], extended["close"], closed="left")
    where = spans.get_indexer([ts])[0]
    return "closed" if where < 0 else str(extended["session"].iloc[where])


@pytest.mark.parametrize(
    ("days", "hours", "anchor"),
    [(THANKSGIVING, "regular", "auto"), (FALL_BACK, "extended", "session")],
    ids=["thanksgiving-regular-auto", "fall-back-extended-session"],
)
def test_sessions_through_a_sigkill_and_a_rebalance_equal_the_oracle(
    stack, unique, tmp_path, days, hours, anchor
):
    first_day, count, trading_days = days
    last_day = (dt.date.fromisoformat(first_day) + dt.timedelta(days=count - 1)).isoformat()
    keyspace = f"stockapp_sessions_{unique}"
    migrate(stack, keyspace=keyspace)
    env = worker_env(
        "sessions",
        unique,
        keyspace,
        tmp_path / "data1",
        STOCKAPP_EXCHANGE="XNYS",
        STOCKAPP_SESSION_HOURS=hours,
        STOCKAPP_INTRADAY_ANCHOR=anchor,
        STOCKAPP_IDLE_CLOSE_SECONDS="3",
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_TABLE_STORE="rocksdb",  # local state ahead of the changelog, through the kill
        STOCKAPP_LOG_LEVEL="INFO",
    )
    ticks = week_of_ticks(first_day, count, SYMBOLS, seed=31, max_gap_ms=MAX_GAP_MS)
    counted = session_segments("XNYS", hours, first_day, last_day)
    extended = session_segments("XNYS", "extended", first_day, last_day)
    expected = {}
    for interval in INTERVALS:
        frame = expected_session_candles(ticks, interval, counted, _anchor(anchor, interval))
        for _, row in frame.iterrows():
            expected[(row["symbol"], interval, int(row["start"]))] = row
    assert counted["day_open"].nunique() == trading_days  # no holiday, no weekend
    if days == FALL_BACK:  # the regular open in UTC moves with the clocks
        regular = counted[counted["session"] == "regular"]
        assert {o % 86_400_000 for o in regular["open"]} == {48_600_000, 52_200_000}

    records = [
        (
            t.symbol.encode(),
            orjson.dumps(
                {"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}
                | ({"volume_only": True} if t.volume_only else {})
            ),
        )
        for t in ticks
    ]
    bootstrap = stack.kafka_bootstrap[0]
    # Two thirds first; the rest once the second worker has joined, so that it has work.
    split = 2 * len(records) // 3
    partitions = asyncio.run(produce(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], records[:split]))
    assert len(set().union(*partitions.values())) == 8, partitions
    first = Worker(env, tmp_path / "worker1.log")
    second = Worker(
        {**env, "STOCKAPP_WEB_PORT": str(free_port()), "STOCKAPP_DATA_DIR": str(tmp_path / "d2")},
        tmp_path / "worker2.log",
    )
    cluster, session = connect(stack, keyspace=keyspace)

    def stored_quotes() -> int:
        return session.execute("SELECT count(*) FROM quotes", timeout=120).one()[0]

    try:
        first.start()
        wait_for(lambda: stored_quotes() >= len(ticks) // 3, 300, "a third", first)
        first.stop(signal.SIGKILL)
        first.start()
        wait_for(lambda: stored_quotes() >= split, 300, "two thirds", first)
        second.start()
        wait_for(
            lambda: bool(second.stats(full=True).get("ends")),
            180,
            "the second worker's partitions",
            second,
            others=[first],
        )
        asyncio.run(produce(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], records[split:]))
        # Both: the stream's last hours are closed time, stored after the last candle closed.
        wait_for(
            lambda: (
                session.execute("SELECT count(*) FROM candles", timeout=60).one()[0]
                >= len(expected)
                and stored_quotes() >= len(ticks)
            ),
            600,
            "all candles closed and every quote stored",
            first,
            others=[second],
            missing=lambda: sorted(
                {(k[0], k[1]) for k in set(expected) - set(stored_rows(session))}
            ),
        )
        stored = stored_rows(session)
        quotes = [
            (r.symbol, calendar.timegm(r.ts.timetuple()) * 1000 + r.ts.microsecond // 1000, r)
            for r in session.execute("SELECT symbol, ts, session FROM quotes", timeout=120)
        ]
        took_over = second.stats().get("quotes", 0)
        # The API (the first worker's port, forwarding to the owner): each candle's session.
        port = int(env["STOCKAPP_WEB_PORT"])
        api = {
            interval: http_json(port, f"/api/candles/{SYMBOLS[0]}?interval={interval}&limit=5000")
            for interval in ("1h", "1d")
        }
        meta = http_json(port, "/api/meta")[1]
    finally:
        cluster.shutdown()
        second.stop()
        first.stop()
        drop_keyspace(stack, keyspace)

    assert took_over > 0  # the rebalance moved symbols, and their state, to the second worker
    outputs = with_indicators(stack, DEFAULT_INDICATORS).indicator_outputs
    assert_stored_candles(stored, expected, outputs)

    # Every tick stored once as a raw quote, with its session by the library's schedule.
    assert len(quotes) == len(ticks)
    sessions = {(t.symbol, t.ts): _session_of(t.ts, extended) for t in ticks}
    assert Counter((s, ts) for s, ts, _ in quotes) == Counter((t.symbol, t.ts) for t in ticks)
    assert all(r.session == sessions[(s, ts)] for s, ts, r in quotes)
    assert {"pre", "regular", "post", "closed"} <= set(sessions.values())

    # The candles topic: every candle the oracle's, with the session's end (a cut bar ends at
    # the close).
    assert_published_candles(bootstrap, env["STOCKAPP_TOPIC_CANDLES"], expected, outputs)

    status, body, _ = api["1d"]
    assert status == 200
    want_days = sorted(k[2] // 1000 for k in expected if k[0] == SYMBOLS[0] and k[1] == "1d")
    assert [c["t"] for c in body["candles"]] == want_days
    assert {c["session"] for c in body["candles"]} == {hours}
    status, body, _ = api["1h"]
    assert status == 200
    assert [c["session"] for c in body["candles"]] == [
        _session_of(c["t"] * 1000, extended) for c in body["candles"]
    ]
    assert {c["session"] for c in body["candles"]} == (
        {"regular"} if hours == "regular" else {"pre", "regular", "post"}
    )
    assert meta["exchange"] == "XNYS" and meta["session_hours"] == hours
