"""Monitoring on real parts: a real Prometheus scrapes a real worker's /metrics while quotes
flow; promtool checks and unit-tests the alerting rules and the Prometheus configuration; the
Grafana dashboard and the rules only query series the worker exports.

Prometheus and promtool come from Debian's package, unpacked by `make prometheus` (a
dependency of `make test`) into .stack/prometheus; nothing is installed system-wide.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
import yaml

from stockapp.db.migrate import migrate
from tests.helpers import REPO, free_port, wait_http
from tests.integration.workers import Worker, produce, worker_env

BIN = REPO / ".stack" / "prometheus" / "usr" / "bin"
PROMETHEUS, PROMTOOL = BIN / "prometheus", BIN / "promtool"
RULES = REPO / "docker" / "prometheus" / "alerts.yml"
CONFIG = REPO / "docker" / "prometheus" / "prometheus.yml"
RULE_TESTS = REPO / "tests" / "prometheus" / "alerts_test.yml"
DASHBOARD = REPO / "docker" / "grafana" / "dashboards" / "stockapp.json"
T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC


@pytest.fixture(scope="module", autouse=True)
def binaries() -> None:
    if not PROMETHEUS.exists() or not PROMTOOL.exists():
        pytest.fail(f"no {PROMETHEUS.relative_to(REPO)}: run `make prometheus` (make test does)")


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_promtool_accepts_the_rules_and_the_config():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    config = promtool("check", "config", str(CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_alerting_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_broken_copies_fail_the_checks(tmp_path):
    broken_rules = tmp_path / "alerts.yml"
    broken_rules.write_text(RULES.read_text().replace("expr: stockapp_ready == 0", "expr: (("))
    assert promtool("check", "rules", str(broken_rules)).returncode != 0
    broken_config = tmp_path / "prometheus.yml"
    shutil.copy(RULES, tmp_path / "alerts.yml")
    broken_config.write_text(CONFIG.read_text().replace("type: A", "type: NOPE"))
    assert promtool("check", "config", str(broken_config)).returncode != 0
    # A rule whose alert changes (here: the threshold) fails the rule tests.
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "alerts.yml").write_text(RULES.read_text().replace("for: 2m", "for: 30m"))
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "alerts_test.yml").write_text(
        RULE_TESTS.read_text().replace("../../docker/prometheus/alerts.yml", "../rules/alerts.yml")
    )
    assert promtool("test", "rules", "alerts_test.yml", cwd=tests).returncode != 0


def _query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _value(port: int, expr: str) -> float | None:
    result = _query(port, expr)
    return float(result[0]["value"][1]) if result else None


def _wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _exported_names(text: str) -> set[str]:
    """Metric names in a Prometheus text exposition, with a histogram's and a counter's
    series names (``_bucket``, ``_count``, ``_sum``, ``_total``) as they are queried."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _queried_names(expressions: list[str]) -> set[str]:
    return {
        name
        for expr in expressions
        for name in re.findall(r"\b((?:stockapp|process)_[a-z0-9_]+)", expr)
    }


def _quote(symbol: str, ts: int, price: float) -> tuple[bytes, bytes]:
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": 10}
    return symbol.encode(), orjson.dumps(body)


def test_prometheus_scrapes_a_worker_while_quotes_flow(stack, tmp_path):
    unique = os.urandom(5).hex()
    keyspace = f"stockapp_metrics_{unique}"
    migrate(stack, keyspace=keyspace)
    # No idle close: the replay's candles close by event time only, so the counts are exact.
    env = worker_env(
        "metrics", unique, keyspace, tmp_path / "data", STOCKAPP_IDLE_CLOSE_SECONDS="3600"
    )
    topic = env["STOCKAPP_TOPIC_QUOTES"]
    bootstrap = stack.kafka_bootstrap[0]
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    # First wave: 2 minutes of ticks, so that the first minute's candles close by event time.
    first = [_quote(symbols[i % 4], T0 + i * 500, 100 + i * 0.01) for i in range(240)]
    asyncio.run(produce(bootstrap, topic, first))
    worker = Worker(env, tmp_path / "worker.log")
    web_port = int(env["STOCKAPP_WEB_PORT"])
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: stockapp\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{web_port}']\n"
    )
    prometheus = None
    try:
        worker.start()
        wait_http(f"http://127.0.0.1:{web_port}/health", timeout=120)
        with open(tmp_path / "prometheus.log", "wb") as log:
            prometheus = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60)

        # Prometheus reads the worker: the target is up and the first wave is counted.
        _wait("the target up", lambda: _value(prom_port, 'up{job="stockapp"}') == 1.0)
        _wait(
            "the first wave counted",
            lambda: _value(prom_port, "stockapp_records_total") == 240.0,
            timeout=120,
        )
        assert _value(prom_port, 'stockapp_quotes_total{outcome="on_time"}') == 240.0
        assert _value(prom_port, 'stockapp_candles_closed_total{interval="1m"}') == 4.0
        assert _value(prom_port, "stockapp_ready") == 1.0
        assert _value(prom_port, "stockapp_tables_recovered") == 1.0
        assert _value(prom_port, "stockapp_batch_stuck") == 0.0
        assert _value(prom_port, "sum(stockapp_partitions_assigned)") == 8.0
        assert _value(prom_port, "sum(stockapp_consumer_lag)") == 0.0
        assert _value(prom_port, "stockapp_batch_seconds_count") >= 1
        assert _value(prom_port, "stockapp_cassandra_write_seconds_count") >= 1

        # The series move while quotes flow: a second wave, with one record that is not JSON
        # and one whose price is out of range (dead letters, by reason class).
        second = [
            _quote(symbols[i % 4], T0 + 120_000 + i * 500, 101 + i * 0.01) for i in range(120)
        ]
        second += [(b"AAPL", b"{not json"), _quote("AAPL", T0 + 200_000, -1.0)]
        asyncio.run(produce(bootstrap, topic, second))
        _wait(
            "the second wave counted",
            lambda: _value(prom_port, "stockapp_records_total") == 362.0,
            timeout=120,
        )
        assert _value(prom_port, 'stockapp_quotes_total{outcome="on_time"}') == 360.0
        assert _value(prom_port, 'stockapp_quotes_total{outcome="invalid"}') == 2.0
        assert _value(prom_port, 'stockapp_invalid_total{reason="not_json"}') == 1.0
        assert _value(prom_port, 'stockapp_invalid_total{reason="out_of_range"}') == 1.0
        assert _value(prom_port, 'stockapp_candles_closed_total{interval="1m"}') == 8.0
        # A rate over the window the quotes arrived in is positive.
        assert _value(prom_port, "sum(increase(stockapp_records_total[1m]))") > 0

        # What the dashboard and the alerting rules query, the worker exports.
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        exported = _exported_names(text)
        dashboard = json.loads(DASHBOARD.read_text())
        panel_queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        rules = yaml.safe_load(RULES.read_text())
        rule_queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
        assert len(panel_queries) > 10 and len(rule_queries) == 6
        unknown = _queried_names(panel_queries + rule_queries) - exported
        assert unknown == set(), f"queried but not exported: {sorted(unknown)}"
        # No label that grows with the data: never a symbol.
        assert not any(symbol in text for symbol in symbols)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            try:
                prometheus.wait(30)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
        worker.stop()
