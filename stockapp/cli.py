"""The ``stockapp`` command.

``stockapp worker`` hands over to Faust's own worker command (every Faust worker option works);
the other subcommands are ours. Errors a user can fix print one line and exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from stockapp.errors import StockappError
from stockapp.logs import configure, redact_secrets
from stockapp.settings import Settings, load_settings
from stockapp.sources.factory import SourceSpec
from stockapp.sources.simulator import DEFAULT_SYMBOLS
from stockapp.tables.intervals import parse_interval

_LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warn",
    "ERROR": "error",
    "CRITICAL": "crit",
}


def _cmd_migrate(args: argparse.Namespace) -> int:
    from stockapp.db.migrate import migrate

    report = migrate(load_settings(), keyspace=args.keyspace)
    for name in report.applied:
        print(f"applied {name}")
    if report.columns:
        print(f"added indicator columns to candles: {', '.join(report.columns)}")
    print(
        f"keyspace {report.keyspace}: {len(report.applied)} applied, "
        f"{len(report.already)} already up to date"
    )
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    from stockapp.produce import run
    from stockapp.validation import MAX_PACKED

    if args.count is not None and args.count < 0:
        raise StockappError("--count must be >= 0")
    if args.pack is not None and not 1 <= args.pack <= MAX_PACKED:
        raise StockappError(f"--pack must be within 1..{MAX_PACKED}")
    if not 0 <= args.linger_ms <= 10_000:
        raise StockappError("--linger-ms must be within 0..10000")
    return run(load_settings(), _source_spec(args), args.count, args.pack, args.linger_ms / 1000)


def _source_spec(args: argparse.Namespace, end_ms: int | None = None) -> SourceSpec:
    """The source the options of ``produce`` or ``backfill`` name, checked."""
    from stockapp.sources.alphavantage import INTRADAY_SECONDS

    symbols = _symbols(args.symbols)
    spec = SourceSpec(
        kind=args.source,
        symbols=tuple(symbols),
        only_symbols=args.symbols != ",".join(DEFAULT_SYMBOLS),
        end_ms=end_ms,
        seed=args.seed,
        bar_seconds=args.bar_seconds,
        bar_interval=args.bar_interval,
    )
    if args.source == "csv":
        if not args.file:
            raise StockappError("--source csv needs --file PATH")
        if not Path(args.file).is_file():
            raise StockappError(f"--file {args.file}: no such file")
        speed = getattr(args, "speed", 0.0)
        if speed < 0:
            raise StockappError("--speed must be >= 0")
        return replace(
            spec, file=Path(args.file), strict=getattr(args, "strict", False), speed=speed
        )
    if args.bar_interval not in INTRADAY_SECONDS:
        raise StockappError(f"--bar-interval must be one of {', '.join(INTRADAY_SECONDS)}")
    if args.source in ("finnhub", "alpaca"):
        return replace(
            spec,
            feed=args.feed,
            channel=getattr(args, "channel", "trades"),
            start_ms=getattr(args, "start_ms", None),
        )
    if args.source == "alphavantage":
        every = getattr(args, "every", 30.0)
        if every < 1:
            raise StockappError("--every must be at least 1 second")
        # The parser's choices keep both to the values SourceSpec takes.
        mode: Literal["quote", "intraday"] = getattr(args, "mode", "quote")
        size: Literal["compact", "full"] = getattr(args, "outputsize", "compact")
        return replace(spec, mode=mode, every=every, outputsize=size)
    return replace(spec, **_simulator_options(args))


def _simulator_options(args: argparse.Namespace) -> dict:
    if hasattr(args, "tick_seconds"):  # backfill: one tick every --tick-seconds of event time
        if args.tick_seconds <= 0:
            raise StockappError("--tick-seconds must be > 0")
        return {
            "rate": 1.0,
            "speedup": args.tick_seconds,
            "start_ms": args.start_ms,
            "always_open": args.always_open,
        }
    if args.rate < 0 or args.speedup <= 0:
        raise StockappError("--rate must be >= 0 and --speedup > 0")
    prices = {}
    for item in (args.prices or "").split(","):
        if item.strip():
            symbol, _, price = item.partition("=")
            try:
                prices[symbol.strip().upper()] = float(price)
            except ValueError:
                raise StockappError(f"--prices: {item!r} is not SYMBOL=PRICE") from None
    return {
        "rate": args.rate,
        "speedup": args.speedup,
        "start_ms": _time_arg(args.start, "--start"),
        "prices": prices,
        "always_open": args.always_open,
    }


def _always_open_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--always-open",
        action="store_true",
        help="simulator: trade around the clock (default: only in the sessions that count in "
        "STOCKAPP_EXCHANGE's calendar, always with ALWAYS_OPEN)",
    )


def _symbols(text: str) -> list[str]:
    from stockapp.validation import SYMBOL

    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    bad = [s for s in symbols if not SYMBOL.fullmatch(s)]
    if not symbols or bad:
        raise StockappError(f"--symbols: not valid symbols: {', '.join(bad) or '(none)'}")
    return symbols


def _time_arg(value: str | None, name: str) -> int | None:
    from stockapp.validation import InvalidQuote, parse_ts

    if value is None:
        return None
    try:
        return parse_ts(int(value) if value.isdigit() else value)
    except InvalidQuote as exc:
        raise StockappError(f"{name}: {exc}") from None


def _cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from stockapp.backfill import compute, store
    from stockapp.sources.factory import collect

    settings = load_settings()
    if args.intervals:
        names = tuple(n.strip() for n in args.intervals.split(",") if n.strip())
        try:
            for name in names:
                parse_interval(name, settings.market_timezone)
        except ValueError as exc:
            raise StockappError(f"--intervals: {exc}") from None
        settings = settings.model_copy(update={"intervals": names})
    start, end = _time_arg(args.start, "--from"), _time_arg(args.end, "--to")
    if start is not None and end is not None and start >= end:
        raise StockappError("--from must be before --to")
    if args.source == "simulator":
        end = end if end is not None else int(time.time() * 1000) // 1000 * 1000
        if start is None:
            start = end - 86_400_000 if args.always_open else _last_trading_day(settings, end)
    if args.source == "alpaca":
        if start is None:
            raise StockappError("backfill --source alpaca needs --from")
        end = end if end is not None else int(time.time() * 1000)
    args.start_ms = start
    spec = _source_spec(args, end_ms=end)
    quotes = asyncio.run(collect(spec, settings))
    result = compute(settings, quotes, start, end)
    print(f"backfill: computed {result.line()}", file=sys.stderr)
    store(settings, result, args.source)
    print(f"backfill: done: {result.line()}", file=sys.stderr)
    return 0


def _last_trading_day(settings: Settings, end_ms: int) -> int:
    """Where `backfill`'s simulated history starts by default: a day back on the always-open
    calendar; on an exchange's, the counted open of the last trading day begun by ``end_ms``
    (on a weekend, Friday's sessions), since the simulator skips closed time."""
    calendar = settings.calendar
    if calendar.continuous:
        return end_ms - 86_400_000
    extended = settings.session_hours == "extended"
    today = dt.datetime.fromtimestamp(end_ms / 1000, calendar.tz).date()
    for day in reversed(calendar.days(today - dt.timedelta(days=14), today)):
        opens, _ = day.counted(extended)
        if opens < end_ms:
            return opens
    return end_ms - 86_400_000  # (a calendar with no trading day in two weeks)


def _cmd_check(args: argparse.Namespace) -> int:
    from stockapp.connectivity import check_cassandra, check_kafka

    settings = load_settings()
    brokers = check_kafka(settings)
    version = check_cassandra(settings)
    print(f"kafka: {brokers} broker(s) at {','.join(settings.kafka_bootstrap)}")
    print(f"cassandra: {version} at {','.join(settings.cassandra_hosts)}:{settings.cassandra_port}")
    return 0


def _web_port_option(faust_args: list[str]) -> str | None:
    """The value of Faust's ``--web-port``/``-p`` option, if given."""
    for i, arg in enumerate(faust_args):
        if arg in ("--web-port", "-p") and i + 1 < len(faust_args):
            return faust_args[i + 1]
        if arg.startswith("--web-port="):
            return arg.split("=", 1)[1]
    return None


def _require_writable(worker_dir: Path) -> None:
    """The worker's state directory, created (Faust creates only its last level) and shown to
    be writable by a file written and removed; else the one line saying whose it is."""
    import os

    probe = worker_dir / ".stockapp-write-check"
    try:
        worker_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StockappError(
            f"the worker's state directory {worker_dir} is not writable by uid {os.getuid()} "
            f"({exc.strerror or exc}): set STOCKAPP_DATA_DIR to a directory this user can "
            "write (in a container: a volume at /data that uid 10001 can write)"
        ) from None


def _require_tested_faust(allow_untested: bool) -> str | None:
    """Faust and aiokafka at the versions stockapp/faust_compat.py was checked against, or
    with ``allow_untested`` the warning to log: a release that changed a private name it
    patches would otherwise go unnoticed until records are skipped or lost around a
    rebalance."""
    try:
        from stockapp import faust_compat
    except (ImportError, AttributeError) as exc:
        # The version check lives in that module; a release that removed what it imports
        # fails here, and deserves the same one line rather than a traceback.
        raise StockappError(_faust_compat_unusable(exc)) from None
    return faust_compat.check_versions(allow_untested)


def _warn_when_started(app: Any, message: str) -> None:
    """Logs ``message`` as a WARNING once the worker runs. Not sooner: until Faust's worker
    sets up logging, what faust_compat logs is lost (mode gives the logger of each module
    that defines a Faust service a NullHandler, so Python's last-resort output never fires)."""
    from stockapp.faust_compat import log

    async def warn_untested_faust() -> None:
        log.warning("%s", message)

    app.task(warn_untested_faust)


def _faust_compat_unusable(exc: Exception) -> str:
    from importlib import metadata

    names = ("faust-streaming", "aiokafka")
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    try:
        # An installed stockapp has no setup.cfg to point at; its metadata has the same pins.
        pins = [r for r in metadata.requires("stockapp") or () if r.startswith(names)]
    except metadata.PackageNotFoundError:
        pins = []
    wanted = f" ({', '.join(pins)})" if pins else ""
    return (
        f"stockapp/faust_compat.py does not work with the installed {' and '.join(versions)} "
        f"({type(exc).__name__}: {exc}); install the versions stockapp requires{wanted}"
    )


def _use_event_loop(name: str) -> None:
    """Make ``name`` (STOCKAPP_EVENT_LOOP) the event loop of every loop created from now on;
    asyncio's where uvloop is not installed (it has no Windows build)."""
    import asyncio

    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            print(
                "stockapp: uvloop is not installed here; the worker runs on asyncio's event loop",
                file=sys.stderr,
            )
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())


def _run_worker(faust_args: list[str]) -> int:
    import os

    # `stockapp worker --web-port 6067` must mean STOCKAPP_WEB_PORT=6067 for stockapp too: the
    # port names the worker to the others (routing) and its own state directory.
    port = _web_port_option(faust_args)
    if port is not None:
        os.environ["STOCKAPP_WEB_PORT"] = port
    settings = load_settings()
    redact_secrets(settings.secrets)
    # Before anything else: an exposed worker without a token would serve everyone.
    settings.require_web_protection()
    # Before the imports below, which reach faust_compat and so Faust's private code.
    untested = _require_tested_faust(settings.allow_untested_faust)
    from stockapp import state_budget
    from stockapp.connectivity import check_kafka
    from stockapp.db.migrate import require_current
    from stockapp.sinks.cassandra_session import connect
    from stockapp.topics import ensure_topics

    # Before any server is asked: a state directory the worker cannot write (a container's
    # /data volume owned by another user, mounted read-only) would otherwise end it with
    # RocksDB's traceback once it has joined the group.
    _require_writable(settings.worker_dir)
    # Faust would otherwise retry forever with a traceback per attempt: fail fast, in one line.
    check_kafka(settings)
    cluster, session = connect(settings, keyspace=settings.cassandra_keyspace)
    try:
        require_current(session, settings.cassandra_keyspace, settings.indicator_outputs)
    finally:
        cluster.shutdown()
    ensure_topics(settings)
    # The state budget must fit in what Kafka takes, checked before the worker starts
    # (docs/operations.md#problems-seen-and-fixed).
    batch_bytes = state_budget.check(settings)
    from stockapp.app import app

    app.conf.producer_max_batch_size = batch_bytes  # before the producer is made

    if untested is not None:
        _warn_when_started(app, untested)
    # Faust's worker creates its loop through the policy, in app.main(). Set here, after
    # Faust is imported (FAUST_LOOP in the environment sets a policy at import), so that
    # STOCKAPP_EVENT_LOOP decides.
    _use_event_loop(settings.event_loop)
    sys.argv = ["stockapp", "--loglevel", _LEVELS[settings.log_level], "worker", *faust_args]
    app.main()
    return 0


def _feed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feed",
        choices=["iex", "sip"],
        default="iex",
        help="alpaca: IEX (the free plan) or SIP (all US exchanges, paid plans)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockapp", description="stockapp command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "worker", help="run a Faust worker (options are Faust's: see worker --help)", add_help=False
    )
    db = sub.add_parser("db", help="Cassandra schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    mig = db_sub.add_parser("migrate", help="create the keyspace and apply pending migrations")
    mig.add_argument("--keyspace", help="override STOCKAPP_CASSANDRA_KEYSPACE")
    mig.set_defaults(func=_cmd_migrate)
    prod = sub.add_parser("produce", help="publish quotes from a source to Kafka")
    prod.add_argument(
        "--source",
        choices=["simulator", "csv", "alphavantage", "finnhub", "alpaca"],
        default="simulator",
    )
    prod.add_argument(
        "--mode",
        choices=["quote", "intraday"],
        default="quote",
        help="alphavantage: GLOBAL_QUOTE polling or TIME_SERIES_INTRADAY bars",
    )
    prod.add_argument(
        "--every",
        type=float,
        default=30.0,
        help="alphavantage: seconds between polls of the symbol list",
    )
    prod.add_argument("--bar-interval", default="1min", help="alphavantage intraday: 1min..60min")
    prod.add_argument(
        "--outputsize",
        choices=["compact", "full"],
        default="compact",
        help="alphavantage intraday: last 100 bars, or the full series",
    )
    _feed_options(prod)
    prod.add_argument(
        "--channel",
        choices=["trades", "bars"],
        default="trades",
        help="alpaca: trades, or minute bars (and their updates)",
    )
    prod.add_argument("--file", help="CSV of ticks or bars (csv; see docs/sources.md)")
    prod.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="csv: replay speed keeping the gaps (2 = twice as fast); 0 = as fast as possible",
    )
    prod.add_argument("--strict", action="store_true", help="csv: stop at the first bad row")
    prod.add_argument("--bar-seconds", type=int, default=60, help="csv: length of each bar")
    prod.add_argument(
        "--symbols", default=",".join(DEFAULT_SYMBOLS), help="comma-separated symbols"
    )
    prod.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="quotes per second of wall time; 0 = as fast as possible",
    )
    prod.add_argument("--count", type=int, help="stop after this many quotes")
    prod.add_argument(
        "--pack",
        type=int,
        help="quotes of a symbol per record at most (a JSON array); 1 = one quote per record. "
        "Default: 100 for the simulator at --rate 0 or >= 1000, else 1",
    )
    prod.add_argument(
        "--linger-ms",
        type=float,
        default=5.0,
        help="packing: how long due quotes wait for more to join their records",
    )
    prod.add_argument("--seed", type=int, default=42, help="random seed (simulator)")
    prod.add_argument(
        "--start",
        help="event time of the first quote, ISO-8601 with offset "
        "or epoch ms (simulator; default: now)",
    )
    prod.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="event seconds per wall second (simulator; with --start in the past)",
    )
    prod.add_argument("--prices", help="simulator: starting prices, e.g. AAPL=231.5,MSFT=410")
    _always_open_option(prod)
    prod.set_defaults(func=_cmd_produce)
    back = sub.add_parser("backfill", help="load history into Cassandra and seed the stream")
    back.add_argument(
        "--source", choices=["simulator", "csv", "alphavantage", "alpaca"], default="simulator"
    )
    back.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    back.add_argument("--intervals", help="comma-separated (default: STOCKAPP_INTERVALS)")
    back.add_argument(
        "--from",
        dest="start",
        help="first time, ISO-8601 or epoch ms (simulator default: a day before --to)",
    )
    back.add_argument("--to", dest="end", help="end (exclusive); simulator default: now")
    back.add_argument("--file", help="csv: the file to load")
    back.add_argument("--bar-seconds", type=int, default=60, help="csv: length of each bar")
    back.add_argument("--seed", type=int, default=42, help="simulator: random seed")
    back.add_argument(
        "--tick-seconds",
        type=float,
        default=2.0,
        help="simulator: event time between two ticks (all symbols)",
    )
    back.add_argument("--bar-interval", default="1min", help="alphavantage: 1min..60min")
    _always_open_option(back)
    _feed_options(back)
    back.set_defaults(func=_cmd_backfill)
    chk = sub.add_parser("check", help="check that Kafka and Cassandra answer")
    chk.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "worker":
            return _run_worker(argv[1:])
        args = build_parser().parse_args(argv)
        settings = load_settings()
        configure(settings.log_level)
        redact_secrets(settings.secrets)
        return int(args.func(args))
    except StockappError as exc:
        print(f"stockapp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
