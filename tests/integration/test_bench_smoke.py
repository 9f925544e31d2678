"""`make bench-smoke`: the benchmark harness on a tiny stream, checked for the shape of what it
reports (every contender ran and has a rate and ratios), never for speeds."""

from __future__ import annotations

import json
import sys

from tests.helpers import run


def test_the_benchmark_harness_reports_every_contender(stack, tmp_path):
    done = run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert {"date", "cores", "machine", "versions", "settings", "throughput"} <= set(report)
    names = [r["name"] for r in report["throughput"]]
    assert names == [
        "aiokafka decode-only",
        "Faust no-op agent",
        "Cassandra raw-row writer",
        "original design's consumer",
        "stockapp, 1 worker",
        "stockapp, 1 worker, packed records",
    ]
    for row in report["throughput"]:
        assert row["records"] > 0 and row["per_second"] > 0, row
        assert row["vs_faust_noop"] > 0 and row["vs_stockapp"] > 0, row
    # Every record of the stream went through the ones that read it all.
    full = {r["name"]: r["records"] for r in report["throughput"]}
    assert full["stockapp, 1 worker"] == full["aiokafka decode-only"] == 2_000
    assert full["stockapp, 1 worker, packed records"] == 2_000  # quotes, in fewer records
    table = (tmp_path / "smoke.md").read_text()
    assert "| contender | what it does | records | per second |" in table
    assert "| stockapp, 1 worker |" in table


def test_the_driver_cost_harness_reports_its_fit(stack, tmp_path):
    done = run(
        [
            sys.executable,
            "-m",
            "bench.driver",
            "--quotes",
            "400",
            "--symbols",
            "20",
            "--per-symbol",
            "1,5,20",
            "--out",
            str(tmp_path),
        ],
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (report_file,) = tmp_path.glob("driver-*.json")
    report = json.loads(report_file.read_text())
    # Each write is every symbol's k quotes: one statement a symbol for k = 1 and 5; for 20,
    # the quotes alone (they fill more than half a 4 KiB batch) and the latest price apart.
    assert [(r["per_symbol"], r["rows"], r["statements"]) for r in report["runs"]] == [
        (1, 400, 400),
        (5, 400, 80),
        (20, 400, 40),
    ]
    # Fitted, not checked: speeds are never asserted (a tiny run may even fit one below 0).
    assert set(report["fit"]) == {"per_statement_us", "per_row_us"}
    assert "a statement costs" in next(tmp_path.glob("driver-*.md")).read_text()
