"""`make bench`: the same preloaded stream through every contender, in one run.

    .venv/bin/python -m bench [--quotes 100000] [--symbols 500] [--runs 3] [--smoke]

Needs the local stack (`make up`). Prints one table (medians of the runs, ratios computed in
this run) and writes it as JSON and Markdown to bench/results/ (git-ignored). Speeds are
reported, never asserted: `--smoke` runs a tiny stream once to check the harness's output.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path

from bench import contenders
from bench import profile as bench_profile
from bench.contenders import Context, Timing
from bench.stream import delete_topics, preload
from stockapp.db.migrate import migrate
from stockapp.settings import get_settings
from stockapp.sinks.cassandra_session import connect

RESULTS = Path(__file__).resolve().parent / "results"

Contender = Callable[[Context], Awaitable[Timing | None]]  # None: not available here
# The packed stream: each 5,000 quotes (what `stockapp produce` sends together when quotes are
# already due), a symbol's quotes in records of at most 100.
PACK_WINDOW, PACK_SIZE = 5000, 100
PACKING = f"windows of {PACK_WINDOW:,} quotes, at most {PACK_SIZE} of a symbol per record"
# A state cache a tenth of the stream's 500 symbols: what a universe larger than the cache costs.
SMALL_CACHE = 50
SMOKE_SKIPS = {
    "stockapp, 1 worker, state cache of 50 symbols",
    "stockapp, 1 worker, no raw-quote rows",
    "stockapp, 1 worker, packed records, no raw-quote rows",
    "stockapp, 2 workers",
    "Faust no-op agent, uvloop",
    "Faust no-op agent, stockapp's fetch loop",
    "Faust no-op agent, stockapp's fetch loop and delivery",
    "stockapp, 1 worker, Faust's stream delivery",
    "stockapp, 1 worker, asyncio loop",
    "stockapp, 1 worker, always-open calendar",
    "Quix Streams, 1m OHLCV",  # needs its own environment (make bench builds it)
    "Quix Streams, 1m OHLCV, candles to Cassandra",
}


def _contenders(limit_slow: int) -> list[tuple[str, str, Contender]]:
    """(name, what it does, run). ``limit_slow``: records the slow ones stop after."""
    full = 10**12  # the whole topic
    return [
        (
            "aiokafka decode-only",
            "fetch + orjson.loads per record: the Kafka + Python ceiling",
            lambda ctx: contenders.decode_only(ctx, min(full, ctx.records)),
        ),
        (
            "Faust no-op agent",
            "take_events(5000, within=0.1), nothing else: Faust's ceiling",
            contenders.faust_noop,
        ),
        (
            "Faust no-op agent, uvloop",
            "the same on uvloop (Faust's --loop uvloop)",
            lambda ctx: contenders.faust_noop(ctx, loop="uvloop"),
        ),
        (
            "Faust no-op agent, stockapp's fetch loop",
            "the same on asyncio and the worker's consumer, whose fetch loop hands a record on"
            " without Faust's per-record tasks, a bytes topic's record queued as fetched",
            lambda ctx: contenders.faust_noop(ctx, consumer="stockapp"),
        ),
        (
            "Faust no-op agent, stockapp's fetch loop and delivery",
            "the same, its batches taken as the worker's agent takes them: lists from the"
            " channel's queue instead of Faust's stream",
            lambda ctx: contenders.faust_noop(ctx, consumer="stockapp", delivery="queue"),
        ),
        (
            "Quix Streams, 1m OHLCV",
            "one interval: a 1m tumbling window per symbol in event time, no sink (Quix 3.28)",
            contenders.quix_ohlcv,
        ),
        (
            "Quix Streams, 1m OHLCV, candles to Cassandra",
            "the same, its closed candles written at each checkpoint (every 5 s, Quix's default)",
            lambda ctx: contenders.quix_ohlcv(ctx, sink=True),
        ),
        (
            "Cassandra raw-row writer",
            "UNLOGGED batches of 20 rows of one symbol, 64 in flight: rows from one process",
            lambda ctx: contenders.raw_writer(ctx, ctx.records),
        ),
        (
            "original design's consumer",
            "one synchronous INSERT per message",
            lambda ctx: contenders.naive(ctx, min(limit_slow, ctx.records)),
        ),
        (
            "stockapp, 1 worker",
            "every interval and indicator, both Cassandra tables, side topics",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {}, profile=True),
        ),
        (
            "stockapp, 1 worker, always-open calendar",
            "as above on the ALWAYS_OPEN calendar (the default is XNYS): what cutting candles"
            " from sessions costs",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {"STOCKAPP_EXCHANGE": "ALWAYS_OPEN"}),
        ),
        (
            "stockapp, 1 worker, asyncio loop",
            "as above on asyncio's event loop (STOCKAPP_EVENT_LOOP=asyncio; the default is uvloop)",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {"STOCKAPP_EVENT_LOOP": "asyncio"}),
        ),
        (
            "stockapp, 1 worker, Faust's stream delivery",
            "as above with the records taken through Faust's stream (STOCKAPP_DELIVERY=stream;"
            " the default takes lists from the channel's queue)",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {"STOCKAPP_DELIVERY": "stream"}),
        ),
        (
            "stockapp, 1 worker, no raw-quote rows",
            "as above with STOCKAPP_STORE_RAW_QUOTES=false",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {"STOCKAPP_STORE_RAW_QUOTES": "false"}),
        ),
        (
            "stockapp, 1 worker, state cache of 50 symbols",
            "as above with STOCKAPP_STATE_CACHE_SYMBOLS=50: a universe ten times the cache, so"
            " each batch reads most of its symbols' states from the table and decodes them",
            lambda ctx: contenders.stockapp_workers(
                ctx, 1, {"STOCKAPP_STATE_CACHE_SYMBOLS": str(SMALL_CACHE)}
            ),
        ),
        (
            "stockapp, 2 workers",
            "two worker processes on the same cores",
            lambda ctx: contenders.stockapp_workers(ctx, 2, {}),
        ),
        (
            "stockapp, 1 worker, packed records",
            f"as the 1-worker run; the same quotes packed as `produce` sends them ({PACKING})",
            lambda ctx: contenders.stockapp_workers(ctx, 1, {}, profile=True, packed=True),
        ),
        (
            "stockapp, 1 worker, packed records, no raw-quote rows",
            "packed, with STOCKAPP_STORE_RAW_QUOTES=false",
            lambda ctx: contenders.stockapp_workers(
                ctx, 1, {"STOCKAPP_STORE_RAW_QUOTES": "false"}, packed=True
            ),
        ),
    ]


def median_rate(timings: list[Timing]) -> float:
    """The median rate of a contender's runs, those under py-spy left out (it slowed the 1-worker
    runs it sampled by up to 40 % on these machines); all of them when every run was."""
    unprofiled = [t.per_second for t in timings if not t.profiled]
    return statistics.median(unprofiled or [t.per_second for t in timings])


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("faust-streaming", "aiokafka", "cassandra-driver", "orjson"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "-"
    return out


async def _run(args: argparse.Namespace) -> dict:
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap[0]
    unique = uuid.uuid4().hex[:8]
    topic = f"bench.{unique}.quotes"
    packed_topic = f"bench.{unique}.packed"
    keyspace = f"stockapp_bench_{unique}"
    workdir = Path(tempfile.mkdtemp(prefix="stockapp-bench-"))
    migrate(settings, keyspace=keyspace)
    cluster, session = connect(settings, keyspace=keyspace)
    session.execute(contenders.BENCH_TABLE)
    results: list[dict] = []
    try:
        began = time.monotonic()
        records = await preload(bootstrap, topic, args.quotes, args.symbols)
        print(
            f"preloaded {records:,} quotes over {args.symbols} symbols into {topic} "
            f"in {time.monotonic() - began:.1f} s",
            flush=True,
        )
        packed_records = await preload(
            bootstrap, packed_topic, args.quotes, args.symbols, PACK_SIZE, PACK_WINDOW
        )
        print(f"the same quotes packed: {packed_records:,} records ({PACKING})", flush=True)
        profile = args.out / f"profile-{unique}.txt" if args.profile else None
        args.out.mkdir(parents=True, exist_ok=True)
        ctx = Context(
            bootstrap,
            topic,
            records,
            keyspace,
            session,
            workdir,
            profile,
            packed_topic,
            packed_records,
        )
        chosen = _contenders(args.slow_limit)
        if args.exact:
            chosen = [c for c in chosen if c[0] in args.exact]
        elif args.only:
            chosen = [c for c in chosen if any(o in c[0] for o in args.only.split(","))]
        elif args.smoke:  # one of each kind: the variants add start-up time, not coverage
            chosen = [c for c in chosen if c[0] not in SMOKE_SKIPS]
        for name, what, run in chosen:
            timings = []
            for n in range(args.runs):
                # Only the first run is profiled: py-spy slows what it samples by some 10 %.
                timing = await run(ctx if n == 0 else dataclasses.replace(ctx, profile=None))
                if timing is None:  # not available here; said why
                    break
                timings.append(timing)
                batches = f" in {timing.batches:,} batches" if timing.batches else ""
                print(
                    f"  {name} (run {n + 1}): {timing.records:,} records{batches} in "
                    f"{timing.seconds:.2f} s = {timing.per_second:,.0f}/s"
                    + (" (under py-spy: not in the median)" if timing.profiled else ""),
                    flush=True,
                )
            if not timings:
                continue
            results.append(
                {
                    "name": name,
                    "what": what,
                    "records": timings[0].records,
                    "per_second": median_rate(timings),
                    "runs": [round(t.per_second, 1) for t in timings],
                    "profiled_runs": [n for n, t in enumerate(timings) if t.profiled],
                    "batches": [t.batches for t in timings if t.batches],
                }
            )
    finally:
        cluster.shutdown()
        cluster, session = connect(settings, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
        await delete_topics(bootstrap, [topic, packed_topic])
        shutil.rmtree(workdir, ignore_errors=True)
    profiled = profiled_packed = None
    if args.profile and ctx.profile is not None:
        if ctx.profile.exists():
            profiled = bench_profile.summary(ctx.profile)
        if contenders.packed_profile(ctx.profile).exists():
            profiled_packed = bench_profile.summary(contenders.packed_profile(ctx.profile))
    base = {r["name"]: r["per_second"] for r in results}
    noop = base.get("Faust no-op agent")
    mine = base.get("stockapp, 1 worker")
    for r in results:
        r["vs_faust_noop"] = r["per_second"] / noop if noop else None
        r["vs_stockapp"] = r["per_second"] / mine if mine else None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "versions": _versions(),
        "settings": {
            "quotes": args.quotes,
            "symbols": args.symbols,
            "runs": args.runs,
            "slow_limit": args.slow_limit,
        },
        "throughput": results,
        "profile": profiled,
        "profile_packed": profiled_packed,
    }


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"Throughput, {report['date']}: {s['quotes']:,} quotes over {s['symbols']} symbols "
        f"preloaded into 8 partitions, median of {s['runs']} run(s), {report['cores']} cores "
        f"shared with Kafka and Cassandra.",
        "",
        "| contender | what it does | records | per second | vs Faust no-op | vs stockapp |",
        "|---|---|---|---|---|---|",
    ]

    def ratio(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}×"

    for r in report["throughput"]:
        lines.append(
            f"| {r['name']} | {r['what']} | {r['records']:,} | {r['per_second']:,.0f} "
            f"| {ratio(r['vs_faust_noop'])} | {ratio(r['vs_stockapp'])} |"
        )
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines += ["", f"Versions: {versions}."]
    if report.get("profile"):
        lines += ["", "Profile of the 1-worker stockapp run (py-spy, its first run):", ""]
        lines.append(report["profile"])
    if report.get("profile_packed"):
        lines += ["", "Profile of the 1-worker stockapp run on packed records (its first run):", ""]
        lines.append(report["profile_packed"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quotes", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--slow-limit",
        type=int,
        default=20_000,
        help="records the original design's consumer stops after",
    )
    parser.add_argument("--only", help="comma-separated parts of contender names")
    parser.add_argument(
        "--exact",
        action="append",
        help="a contender's whole name (names hold commas); may be given again",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny stream, one run: checks the harness, not speeds",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on the stockapp worker (the bench extra)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.quotes, args.symbols, args.runs, args.slow_limit = 2_000, 20, 1, 500
    report = asyncio.run(_run(args))
    text = markdown(report)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if args.smoke else time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(text)
    print(f"written: {args.out / stem}.json and .md")


if __name__ == "__main__":
    main()
