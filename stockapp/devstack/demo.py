"""``make demo``: the whole main job in the background (stack, schema, worker), and its undo.

Each process gets a PID file in the run directory; ``stop`` ends exactly those, and the stack
only if the demo was the one that started it.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

from stockapp.devstack import processes
from stockapp.devstack.settings import DevstackSettings
from stockapp.errors import StockappError
from stockapp.settings import Settings


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


def backfill_history(settings: Settings) -> dict[str, float]:
    """On a fresh database, a day of simulated history for the demo symbols, so the first
    chart is full and its indicators warm. Returns the prices the live feed continues from:
    on a database with data, the last stored ones, so a restarted demo shows no jump."""
    import time

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
    start = end - 86_400_000
    # A day of history, one tick every 2 s of event time: the same source as `stockapp
    # backfill` with its defaults.
    spec = SourceSpec(rate=1.0, speedup=2.0, start_ms=start, end_ms=end)
    history = asyncio.run(collect(spec, settings))
    result = compute(settings, history, start, end)
    print(f"demo: backfilling a day of simulated history: {result.line()}", flush=True)
    store(settings, result, "simulator")
    last: dict[str, float] = {}
    for tick in history:
        last[tick.symbol] = tick.price
    return last


def start_simulator(
    settings: DevstackSettings, rate: float = 20.0, prices: dict[str, float] | None = None
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
