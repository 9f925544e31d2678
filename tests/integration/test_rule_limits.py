"""The limits of the users' rules on the real stack, under concurrency: two workers on
different web ports share a keyspace, and hundreds of POSTs race through both at once. At
most 200 rules are ever stored (the refused get a 409 naming the limit), their lookbacks never
sum past 2,000, and the totals the store keeps equal what it holds after creates and deletes
that raced. Rules stored before the limits (migration 0006 copies them) beyond the limits are
not put in force.

The cap used to be checked against the worker's last-loaded count before the insert was
awaited: 1,000 concurrent creates stored 1,000 rules."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import aiohttp
import orjson
import pytest

from stockapp.db.migrate import AFTER, migrate
from stockapp.sinks.cassandra_session import connect
from stockapp.tables.signals.limits import MAX_TOTAL_LOOKBACK, MAX_USER_RULES
from tests.helpers import http_json
from tests.integration.workers import Worker, wait_for, worker_env


@pytest.fixture(scope="module")
def two_workers(stack, tmp_path_factory):
    unique = os.urandom(5).hex()
    tmp = tmp_path_factory.mktemp("rule_limits")
    keyspace = f"stockapp_limits_{unique}"
    migrate(stack, keyspace=keyspace)
    common = dict(STOCKAPP_TABLE_STORE="memory", STOCKAPP_RULES_REFRESH_SECONDS="1")
    workers = [
        Worker(
            worker_env(f"lim{n}", unique, keyspace, tmp / f"data{n}", **common), tmp / f"{n}.log"
        )
        for n in (1, 2)
    ]
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            port = int(worker.env["STOCKAPP_WEB_PORT"])
            wait_for(lambda p=port: _answers(p), 120, "the API", worker)
        yield {
            "ports": [int(w.env["STOCKAPP_WEB_PORT"]) for w in workers],
            "workers": workers,
            "cql": session,
        }
    finally:
        for worker in workers:
            worker.stop()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def _answers(port: int) -> bool:
    try:
        return http_json(port, "/api/rules")[0] == 200
    except OSError:
        return False


def crossing(name: str) -> dict:
    return {"name": name, "kind": "crosses_above", "left": "close", "right": 1, "interval": "5m"}


def breakout(name: str, lookback: int) -> dict:
    return {"name": name, "kind": "breakout_up", "lookback": lookback, "interval": "5m"}


async def _all(requests: list[tuple[int, str, str, dict | None]]) -> list[tuple[int, dict]]:
    """Every (port, method, path, body) at once; (status, JSON body) of each."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def one(port: int, method: str, path: str, body: dict | None) -> tuple[int, dict]:
            async with http.request(
                method, f"http://127.0.0.1:{port}{path}", json=body
            ) as response:
                return response.status, await response.json(content_type=None)

        return await asyncio.gather(*(one(*request) for request in requests))


def stored(cql) -> tuple[dict[str, dict], tuple[int, int]]:
    """The users' rules in Cassandra by name, and the totals the store keeps beside them."""
    rows = list(
        cql.execute("SELECT name, spec, rules, lookback FROM user_signal_rules", timeout=60)
    )
    rules = {row.name: orjson.loads(row.spec) for row in rows if row.name is not None}
    totals = (rows[0].rules or 0, rows[0].lookback or 0) if rows else (0, 0)
    return rules, totals


def post(port: int, rule: dict) -> tuple[int, dict]:
    status, body, _ = http_json(
        port, "/api/rules", "POST", orjson.dumps(rule), {"Content-Type": "application/json"}
    )
    return status, body


def user_rules(port: int) -> set[str]:
    status, body, _ = http_json(port, "/api/rules")
    assert status == 200
    return {rule["name"] for rule in body["rules"] if not rule["builtin"]}


def delete_all(ports: list[int], cql) -> None:
    """Every user's rule, deleted concurrently through both workers; the totals follow."""
    names = sorted(stored(cql)[0])
    answers = asyncio.run(
        _all([(ports[i % 2], "DELETE", f"/api/rules/{n}", None) for i, n in enumerate(names)])
    )
    assert all(status == 200 for status, _ in answers), answers
    assert stored(cql) == ({}, (0, 0))


def test_concurrent_creates_through_two_workers_never_pass_the_rule_cap(two_workers):
    ports, cql = two_workers["ports"], two_workers["cql"]
    delete_all(ports, cql)  # whatever an earlier test left
    total = 3 * MAX_USER_RULES
    requests = [(ports[i % 2], "POST", "/api/rules", crossing(f"r{i:04d}")) for i in range(total)]
    answers = asyncio.run(_all(requests))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: MAX_USER_RULES, 409: total - MAX_USER_RULES}, statuses
    refusals = {body["error"] for status, body in answers if status == 409}
    assert refusals == {
        "there are 200 users' rules, the most there may be (MAX_USER_RULES = 200); delete one first"
    }
    created = {body["name"] for status, body in answers if status == 201}
    rules, totals = stored(cql)
    assert set(rules) == created and totals == (MAX_USER_RULES, 0)
    for port, worker in zip(ports, two_workers["workers"], strict=True):
        # In force on each worker: the one that took the POST at once, the other on reload.
        wait_for(lambda p=port: user_rules(p) == created, 30, "the rules in force", worker)
    # One deleted: one more fits, and only one, of many asking at once through both.
    gone = sorted(created)[0]
    assert http_json(ports[1], f"/api/rules/{gone}", "DELETE")[0] == 200
    again = [(ports[i % 2], "POST", "/api/rules", crossing(f"s{i:03d}")) for i in range(40)]
    statuses = Counter(status for status, _ in asyncio.run(_all(again)))
    assert statuses == {201: 1, 409: 39}
    assert stored(cql)[1] == (MAX_USER_RULES, 0)
    delete_all(ports, cql)


def test_concurrent_breakouts_never_pass_the_lookback_budget(two_workers):
    ports, cql = two_workers["ports"], two_workers["cql"]
    delete_all(ports, cql)  # whatever an earlier test left
    # 60 rules asking 100 each race for 2,000: 20 fit, with a rule of no lookback in between.
    requests = [(ports[i % 2], "POST", "/api/rules", breakout(f"b{i:03d}", 100)) for i in range(60)]
    requests.insert(30, (ports[0], "POST", "/api/rules", crossing("no_lookback")))
    answers = asyncio.run(_all(requests))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 21, 409: 40}, statuses
    refused = [body["error"] for status, body in answers if status == 409]
    assert all(e.startswith("lookback: the users' rules would look back 2,100") for e in refused)
    assert all("MAX_TOTAL_LOOKBACK" in e and "0 are left" in e for e in refused)
    rules, totals = stored(cql)
    lookbacks = sum(rule.get("lookback", 0) for rule in rules.values())
    assert totals == (21, MAX_TOTAL_LOOKBACK) == (len(rules), lookbacks)
    # What is left is what fits: none now; after deleting one, 100 (101 is refused).
    assert post(ports[0], breakout("one", 1))[0] == 409
    name = next(n for n in rules if n.startswith("b"))
    assert http_json(ports[1], f"/api/rules/{name}", "DELETE")[0] == 200
    wide, body = post(ports[0], breakout("wide", 101))
    assert wide == 409 and "2,001" in body["error"] and "100 are left" in body["error"]
    assert post(ports[1], breakout("fits", 100))[0] == 201
    assert stored(cql)[1] == (21, MAX_TOTAL_LOOKBACK)
    delete_all(ports, cql)


def test_rules_stored_before_the_limits_are_carried_over_and_those_past_them_not_used(
    two_workers,
):
    ports, cql = two_workers["ports"], two_workers["cql"]
    # As migration 0006 finds them in signal_rules: five breakouts of 500, created in order.
    cql.execute("TRUNCATE signal_rules")
    for n in range(5):
        spec = orjson.dumps(breakout(f"old{n}", 500)).decode()
        cql.execute(
            "INSERT INTO signal_rules (name, spec, created) VALUES (%s, %s, %s)",
            (f"old{n}", spec, 1_767_000_000_000 + n),
        )
    AFTER[6](cql)
    rules, totals = stored(cql)
    assert set(rules) == {f"old{n}" for n in range(5)} and totals == (5, 2_500)
    # The four oldest fit in 2,000; the newest is not put in force, on either worker.
    oldest = {"old0", "old1", "old2", "old3"}
    for port, worker in zip(ports, two_workers["workers"], strict=True):
        wait_for(lambda p=port: user_rules(p) == oldest, 30, "the oldest rules", worker)
    # Nothing more fits until enough is deleted; the store's totals follow the deletes.
    assert post(ports[0], breakout("new", 1))[0] == 409
    assert http_json(ports[0], "/api/rules/old0", "DELETE")[0] == 200
    for port, worker in zip(ports, two_workers["workers"], strict=True):
        wait_for(lambda p=port: "old4" in user_rules(p), 30, "old4 in force", worker)
    assert stored(cql)[1] == (4, 2_000)
    delete_all(ports, cql)
