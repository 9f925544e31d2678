"""``make demo``: the whole main job in the background (stack, schema, worker), and its undo.

Each process gets a PID file in the run directory; ``stop`` ends exactly those, and the stack
only if the demo was the one that started it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
import urllib.request
from pathlib import Path

from stockapp.devstack import processes
from stockapp.devstack.settings import DevstackSettings
from stockapp.errors import StockappError
from stockapp.settings import Settings
from stockapp.tables.sessions import ALWAYS_OPEN


def _bin(name: str) -> str:
    # The console scripts sit next to the interpreter running us (the project's venv).
    return str(Path(sys.executable).parent / name)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _worker_files(settings: DevstackSettings, n: int) -> tuple[Path, Path]:
    """PID and log file of the demo's n-th worker (1: worker.pid, 2: worker-2.pid, ...)."""
    name = "worker" if n == 1 else f"worker-{n}"
    return settings.run_dir / f"{name}.pid", settings.run_dir / f"{name}.log"


def start_worker(settings: DevstackSettings, n: int = 1, timeout: float = 90.0) -> str:
    """The n-th worker, on web port STOCKAPP_WEB_PORT + n - 1 (its own state directory)."""
    pid_file, log_file = _worker_files(settings, n)
    port = settings.web_port + n - 1
    url = f"http://{settings.web_host}:{port}/"
    pid = processes.read_pid(pid_file)
    if pid is None:
        argv = [_bin("stockapp"), "worker", "--web-port", str(port)]
        pid = processes.spawn(argv, pid_file, log_file)
        print(f"demo: worker starting on port {port} (pid {pid}), log {log_file}", flush=True)
    deadline = time.monotonic() + timeout
    while not _http_ok(url + "health"):
        if processes.read_pid(pid_file) is None:
            raise StockappError(
                f"the worker exited; last lines of {log_file}:\n" + processes.tail(log_file)
            )
        if time.monotonic() > deadline:
            raise StockappError(
                f"the worker's web server did not answer {url}health in "
                f"{timeout:.0f}s; see {log_file}"
            )
        time.sleep(0.5)
    return url


# The live simulator's rate (quotes/s over all symbols), and the history's: the same, so the
# volume bars do not jump at the live edge.
DEMO_RATE = 20.0
# With the ALWAYS_OPEN calendar the history is this long: a US regular session's length.
ALWAYS_OPEN_HISTORY_MS = 390 * 60_000


def demo_settings(settings: DevstackSettings, now_ms: int | None = None) -> DevstackSettings:
    """The settings the demo runs with: the configured calendar if its sessions are open when
    the demo's data is first made; otherwise the ALWAYS_OPEN calendar (exported to the
    processes the demo starts), so the chart is live at any hour. The page says which
    (/api/meta ``always_open``).

    The choice is kept with the demo's data (``.run/demo-calendar``, which `make reset` clears
    with the data): a restart at another hour does not switch calendars over the same candles
    and state (docs/streaming.md, "Changing the calendar"), unless STOCKAPP_EXCHANGE now names
    another exchange."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    kept_file = settings.run_dir / "demo-calendar"
    # "<configured> <used>": what STOCKAPP_EXCHANGE said then, and the calendar the demo used.
    words = kept_file.read_text().split() if kept_file.exists() else []
    kept = words[1] if len(words) == 2 and words[0] == settings.exchange else None
    if kept is None and len(words) == 2:
        print(
            f"demo: STOCKAPP_EXCHANGE={settings.exchange} replaces the {words[1]} calendar the "
            "demo's data was cut with: candles of both meet on the same day (make reset starts "
            "afresh)",
            flush=True,
        )
    if kept is None:
        opened = settings.exchange == ALWAYS_OPEN or settings.calendar.open_now(now_ms)
        kept = settings.exchange if opened else ALWAYS_OPEN
        if not opened:
            print(
                f"demo: {settings.exchange} has no {settings.session_hours} session open now: "
                f"the demo runs on the {ALWAYS_OPEN} calendar (STOCKAPP_EXCHANGE={ALWAYS_OPEN}), "
                f"kept in {kept_file} with its data",
                flush=True,
            )
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        kept_file.write_text(f"{settings.exchange} {kept}\n")
    elif kept != ALWAYS_OPEN and not settings.calendar.open_now(now_ms):
        print(
            f"demo: runs on the {kept} calendar its data was cut with, closed now ({kept_file}; "
            "make reset starts afresh)",
            flush=True,
        )
    if kept == settings.exchange:
        return settings
    os.environ["STOCKAPP_EXCHANGE"] = kept
    return settings.model_copy(update={"exchange": kept})


def history_start(settings: Settings, now_ms: int) -> int:
    """Where the demo's history starts: ALWAYS_OPEN_HISTORY_MS of counted session time
    before ``now_ms`` (today's session so far and the days before it, back over nights,
    weekends and holidays), so the history costs the same whatever the hour."""
    calendar = settings.calendar
    if calendar.continuous:
        return now_ms - ALWAYS_OPEN_HISTORY_MS
    extended = settings.session_hours == "extended"
    today = dt.datetime.fromtimestamp(now_ms / 1000, calendar.tz).date()
    left = ALWAYS_OPEN_HISTORY_MS
    for day in reversed(calendar.days(today - dt.timedelta(days=14), today)):
        opens, closes = day.counted(extended)
        if opens >= now_ms:
            continue
        counted = min(closes, now_ms) - opens
        if counted >= left:
            return min(closes, now_ms) - left
        left -= counted
    return now_ms - ALWAYS_OPEN_HISTORY_MS  # (a calendar with no day in two weeks)


def backfill_history(settings: Settings) -> dict[str, float]:
    """On a fresh database, a session's length of simulated trading for the demo symbols, at
    the live simulator's rate, so the first chart is full and its indicators warm. Returns
    the prices the live feed continues from: on a database with data, the last stored ones,
    so a restarted demo shows no jump."""
    from stockapp.backfill import compute, store
    from stockapp.sinks.cassandra_session import connect
    from stockapp.sources.factory import SourceSpec, collect
    from stockapp.sources.simulator import DEFAULT_SYMBOLS

    cluster, session = connect(settings, keyspace=settings.cassandra_keyspace)
    try:
        seeded = session.execute("SELECT symbol FROM state_seeds LIMIT 1").one()
        candles = session.execute("SELECT symbol FROM candles LIMIT 1").one()
        if seeded is not None or candles is not None:
            marks = ", ".join("%s" for _ in DEFAULT_SYMBOLS)
            rows = session.execute(
                f"SELECT symbol, last_price FROM symbols WHERE symbol IN ({marks})",
                list(DEFAULT_SYMBOLS),
            )
            return {r.symbol: r.last_price for r in rows if r.last_price is not None}
    finally:
        cluster.shutdown()
    end = int(time.time()) * 1000
    start = history_start(settings, end)
    # The simulator as it runs live (DEMO_RATE ticks a second of event time), skipping the
    # calendar's closed time.
    spec = SourceSpec(rate=DEMO_RATE, speedup=1.0, start_ms=start, end_ms=end)
    history = asyncio.run(collect(spec, settings))
    result = compute(settings, history, start, end)
    print(f"demo: backfilling simulated sessions since {start}: {result.line()}", flush=True)
    store(settings, result, "simulator")
    last: dict[str, float] = {}
    for tick in history:
        last[tick.symbol] = tick.price
    return last


def start_simulator(
    settings: DevstackSettings, rate: float = DEMO_RATE, prices: dict[str, float] | None = None
) -> int:
    """The default source: simulated quotes for the default symbols, live, until stopped."""
    pid_file = settings.run_dir / "simulator.pid"
    pid = processes.read_pid(pid_file)
    if pid is None:
        argv = [_bin("stockapp"), "produce", "--source", "simulator", "--rate", str(rate)]
        if prices:
            argv += ["--prices", ",".join(f"{s}={p}" for s, p in prices.items())]
        pid = processes.spawn(
            argv,
            pid_file,
            settings.run_dir / "simulator.log",
        )
        print(
            f"demo: simulator publishing {rate:g} quotes/s (pid {pid}), "
            f"log {settings.run_dir / 'simulator.log'}",
            flush=True,
        )
    return pid


def stop(settings: DevstackSettings) -> list[str]:
    """Stop the demo's processes; returns the names of those that were running."""
    stopped = []
    workers = sorted(settings.run_dir.glob("worker*.pid"))
    # The producer first: nothing is left unprocessed.
    for pid_file in [settings.run_dir / "simulator.pid", *workers]:
        if processes.stop(pid_file, grace=30):
            stopped.append(pid_file.stem)
    return stopped


def stack_marker(settings: DevstackSettings) -> Path:
    """Exists while the stack runs because `make demo` started it."""
    return settings.run_dir / "demo-started-stack"
