"""What a Cassandra write costs the worker's process: per statement and per row.

    .venv/bin/python -m bench.driver [--quotes 20000] [--symbols 500]

Needs the local stack (`make up`); `make bench` runs it after the latency harness. The raw
quote rows of ``--quotes`` quotes over ``--symbols`` symbols are written through the worker's
own sink (``CassandraSink.write``: its row binding, its UNLOGGED batches of one symbol's rows,
its futures), with k quotes of each symbol in a write for k in ``--per-symbol``; k sets how
many rows share a statement (a symbol's rows share one while they fit in about 4 KiB; past
that its quotes of the day go in batches of their own, of up to about 64 KiB). The CPU
time of the whole process (every thread: the driver's I/O thread holds the GIL too) is
measured for each k, and ``cpu = a * statements + b * rows`` is fitted to the runs: ``a`` is
what a statement costs beyond its rows, ``b`` what a row costs. Results go to
bench/results/driver-*.{json,md}. Speeds are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from stockapp.db.migrate import migrate
from stockapp.models import Quote, QuoteRow
from stockapp.settings import Settings, get_settings
from stockapp.sinks.cassandra import CassandraSink
from stockapp.sinks.cassandra_session import connect

RESULTS = Path(__file__).resolve().parent / "results"
T0 = 1_780_000_000_000  # a fixed event time (2026-05-28): the rows' day partition


def quote_rows(quotes: int, symbols: int, per_symbol: int, base_offset: int) -> list[list]:
    """The writes: each ``per_symbol`` quotes of every symbol, distinct offsets throughout."""
    writes: list[list] = []
    offset = base_offset
    rounds = max(1, quotes // (symbols * per_symbol))
    for _ in range(rounds):
        rows = []
        for s in range(symbols):
            for _ in range(per_symbol):
                quote = Quote(
                    symbol=f"D{s:04d}", ts=T0 + offset, price=100.0 + offset % 97, volume=10.0
                )
                rows.append(QuoteRow(quote, partition=s % 8, offset=offset, session="regular"))
                offset += 1
        writes.append(rows)
    return writes


async def measure(
    settings: Settings, keyspace: str, quotes: int, symbols: int, ks: list[int]
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    cluster, session = await loop.run_in_executor(None, connect, settings, keyspace)
    out = []
    try:
        sink = CassandraSink(session, settings.interval_ms, settings.cassandra_concurrency)
        base = 0
        # Warm-up: the first writes pay for connections and the server's JIT, not the driver.
        for rows in quote_rows(quotes // 4, symbols, 5, base):
            await sink.write(rows, [])
        for n, k in enumerate(ks):
            writes = quote_rows(quotes, symbols, k, base + (n + 1) * 1_000_000)
            statements = rows_written = 0
            began, cpu = time.perf_counter(), time.process_time()
            for rows in writes:
                statements += await sink.write(rows, [])
                rows_written += len(rows)
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - began
            out.append(
                {
                    "per_symbol": k,
                    "rows": rows_written,
                    "statements": statements,
                    "cpu_s": cpu,
                    "wall_s": wall,
                    "cpu_us_per_row": 1e6 * cpu / rows_written,
                }
            )
            print(
                f"  {k} quotes a symbol a write: {rows_written:,} rows in "
                f"{statements:,} statements, {1e6 * cpu / rows_written:.1f} us CPU a row",
                flush=True,
            )
    finally:
        cluster.shutdown()
    return out


def fit(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Least squares of cpu = a * statements + b * rows (microseconds)."""
    sxx = sxy = syy = sxc = syc = 0.0
    for r in runs:
        x, y, c = r["statements"], r["rows"], r["cpu_s"] * 1e6
        sxx, sxy, syy = sxx + x * x, sxy + x * y, syy + y * y
        sxc, syc = sxc + x * c, syc + y * c
    det = sxx * syy - sxy * sxy
    if det == 0:
        return {"per_statement_us": float("nan"), "per_row_us": float("nan")}
    return {
        "per_statement_us": (sxc * syy - syc * sxy) / det,
        "per_row_us": (syc * sxx - sxc * sxy) / det,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Cassandra writes through the worker's sink, {report['date']}: raw quote rows of "
        f"{report['symbols']} symbols, CPU time of the whole process.",
        "",
        "| quotes of a symbol a write | rows | statements | rows a statement | CPU a row (us) |",
        "|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['per_symbol']} | {r['rows']:,} | {r['statements']:,} "
            f"| {r['rows'] / r['statements']:.1f} | {r['cpu_us_per_row']:.1f} |"
        )
    f = report["fit"]
    lines += [
        "",
        f"Fitted: a statement costs {f['per_statement_us']:.0f} us of CPU beyond its rows, "
        f"a row {f['per_row_us']:.1f} us.",
    ]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    keyspace = f"stockapp_bench_driver_{uuid.uuid4().hex[:8]}"
    migrate(settings, keyspace=keyspace)
    ks = [int(k) for k in args.per_symbol.split(",")]
    try:
        runs = await measure(settings, keyspace, args.quotes, args.symbols, ks)
    finally:
        cluster, session = connect(settings, keyspace=None)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        finally:
            cluster.shutdown()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "quotes": args.quotes,
        "symbols": args.symbols,
        "runs": runs,
        "fit": fit(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--per-symbol", default="1,2,5,10,20,40")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"driver-{stamp}.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (args.out / f"driver-{stamp}.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
