"""The local Kafka + Cassandra stack: ``python -m stockapp.devstack COMMAND``.

``up`` is idempotent: a server this stack started and that still runs is reused, and a server
someone else runs on the configured port is used as it is (and never stopped by ``down``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from stockapp.devstack import jars, processes, secure
from stockapp.devstack.cassandra import cassandra_server
from stockapp.devstack.checkout import stack_files
from stockapp.devstack.java import find_java
from stockapp.devstack.kafka import kafka_server
from stockapp.devstack.server import Server
from stockapp.devstack.settings import DevstackSettings, load_devstack_settings
from stockapp.errors import StockappError


def servers(settings: DevstackSettings) -> list[Server]:
    found = [kafka_server(settings), cassandra_server(settings)]
    if settings.stack_secure:
        # Probed as a client would reach them: Kafka by SASL_SSL, Cassandra with login and TLS
        # (each server keeps its own port: Kafka's plaintext one is rendered into its config).
        probing = secure.client_settings(settings, admin=True)
        found = [replace(server, settings=probing) for server in found]
    return found


def _answers(server: Server, timeout: float = 3.0) -> bool:
    try:
        server.probe(server.settings, timeout)
    except StockappError:  # not answering; or a secure stack's TLS files not made yet
        return False
    return True


def _say(message: str) -> None:
    print(f"stack: {message}", flush=True)


def fetch(settings: DevstackSettings) -> None:
    for server in servers(settings):
        jars.fetch(settings.stack_dir, server.name)
    _say(f"jars ready in {settings.stack_dir}")


def up(settings: DevstackSettings) -> None:
    java = None
    if settings.stack_secure:
        java = find_java(settings.stack_java_home)
        secure.ensure_material(settings, java)
        _say(f"secure stack: client settings in {secure.env_file(settings)}")
    starting: list[Server] = []
    for server in servers(settings):
        pid = processes.read_pid(server.pid_file)
        if pid is not None:
            _say(f"{server.name} already running (pid {pid})")
            starting.append(server)  # it may still be starting up: wait for it below
            continue
        if _answers(server):
            _say(f"{server.name} already answers on port {server.port} (not ours; using it)")
            continue
        jars.fetch(settings.stack_dir, server.name)
        java = java or find_java(settings.stack_java_home)
        argv = server.prepare(server, java)
        pid = processes.spawn(argv, server.pid_file, server.console_log)
        _say(f"{server.name} starting (pid {pid}), logs in {server.log_dir}")
        starting.append(server)
    deadline = time.monotonic() + settings.stack_start_timeout
    for server in starting:
        _wait_ready(server, deadline)
        _say(f"{server.name} ready on 127.0.0.1:{server.port}")
    if settings.stack_secure:
        secure.ensure_role(settings)


def _wait_ready(server: Server, deadline: float) -> None:
    while True:
        pid = processes.read_pid(server.pid_file)
        if pid is None:
            raise StockappError(
                f"{server.name} exited during start-up; last lines of {server.log_dir}:\n"
                + _logs_tail(server)
            )
        if _answers(server, timeout=2.0):
            return
        if time.monotonic() > deadline:
            raise StockappError(
                f"{server.name} (pid {pid}) not ready after {server.settings.stack_start_timeout}s "
                f"(STOCKAPP_STACK_START_TIMEOUT); last lines of its logs:\n" + _logs_tail(server)
            )
        time.sleep(1.0)


def _logs_tail(server: Server) -> str:
    logs = sorted(server.log_dir.glob("*.log")) or [server.console_log]
    return "\n".join(f"--- {log}\n{processes.tail(log, 25)}" for log in logs)


def down(settings: DevstackSettings) -> None:
    for server in servers(settings):
        if processes.stop(server.pid_file):
            _say(f"{server.name} stopped")
        else:
            _say(f"{server.name} was not running (from this stack)")


def status(settings: DevstackSettings, quiet: bool) -> int:
    """0 when both servers answer their protocol (ours or not), 3 otherwise."""
    ok = True
    for server in servers(settings):
        pid = processes.read_pid(server.pid_file)
        answering = _answers(server, timeout=2.0)
        ok = ok and answering
        if not quiet:
            owner = f"pid {pid}" if pid else "not started by this stack"
            state = "ready" if answering else "not answering"
            _say(f"{server.name}: {state} on port {server.port} ({owner})")
    return 0 if ok else 3


def demo_up(settings: DevstackSettings, workers: int = 1) -> None:
    from stockapp.db.migrate import migrate
    from stockapp.devstack import demo

    if status(settings, quiet=True) != 0:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        demo.stack_marker(settings).touch()
    up(settings)
    report = migrate(settings)
    _say(f"schema: {len(report.applied)} migration(s) applied to {report.keyspace}")
    settings = demo.demo_settings(settings)
    prices = demo.backfill_history(settings)
    urls = [demo.start_worker(settings, n) for n in range(1, workers + 1)]
    demo.start_simulator(settings, prices=prices)
    shown = urls[0] + (f" (and {', '.join(urls[1:])})" if urls[1:] else "")
    print(f"\nstockapp is running: {shown}\nStop it with: make demo-stop\n", flush=True)


def demo_down(settings: DevstackSettings) -> None:
    from stockapp.devstack import demo

    for name in demo.stop(settings):
        _say(f"demo {name} stopped")
    marker = demo.stack_marker(settings)
    if marker.exists():
        down(settings)
        marker.unlink()
    else:
        _say("the stack was running before the demo started: left running (make down stops it)")


def image(settings: DevstackSettings) -> None:
    """`make image`: docker/Dockerfile built with podman, on the official bases or, where no
    registry is reachable, on stand-ins from Debian packages (stockapp/devstack/images.py)."""
    from stockapp.devstack import images, podman

    chosen, seconds = images.build(settings)
    size = podman.image_size(images.IMAGE) / 1e6
    _say(f"image {images.IMAGE}: built in {seconds:.0f} s on {chosen.line()}; {size:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stockapp.devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the server jars into the stack directory")
    sub.add_parser("up", help="start Kafka and Cassandra and wait until both answer")
    sub.add_parser("down", help="stop the servers this stack started")
    st = sub.add_parser("status", help="exit 0 if both servers answer")
    st.add_argument("--quiet", action="store_true")
    demo_parser = sub.add_parser("demo-up", help="stack, schema and workers in the background")
    demo_parser.add_argument("--workers", type=int, default=1, help="how many workers (ports N..)")
    sub.add_parser("demo-down", help="stop what demo-up started")
    sub.add_parser("image", help="build the stockapp image (docker/Dockerfile) with podman")
    args = parser.parse_args(argv)
    try:
        stack_files()  # a tool of a checkout: outside one, every command says so in one line
        settings = load_devstack_settings()
        if args.command == "fetch":
            fetch(settings)
        elif args.command == "up":
            up(settings)
        elif args.command == "down":
            down(settings)
        elif args.command == "demo-up":
            if args.workers < 1:
                raise StockappError("--workers must be at least 1")
            demo_up(settings, args.workers)
        elif args.command == "demo-down":
            demo_down(settings)
        elif args.command == "image":
            image(settings)
        else:
            return status(settings, args.quiet)
    except StockappError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
