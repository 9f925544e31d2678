"""Apply the versioned CQL files in ``migrations/`` in order, each exactly once.

Applied versions are recorded in ``<keyspace>.schema_migrations`` with a checksum, so re-runs
are no-ops and an edited, already-applied file is reported instead of silently diverging.
Every statement is ``IF NOT EXISTS`` so two runners racing each other are harmless.

The candles table has one ``double`` column per indicator output. Which outputs exist is a
setting (``STOCKAPP_INDICATORS``), not a release, so their columns are not a versioned file:
after the files, ``migrate`` adds a column for each configured output the table lacks
(docs/streaming.md, "Changing the indicators"). Columns are never dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockapp.errors import StockappError
from stockapp.settings import Settings
from stockapp.sinks.cassandra_session import connect

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.cql$")
_KEYSPACE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def statements(self) -> list[str]:
        body = "\n".join(
            line for line in self.text.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in body.split(";") if s.strip()]


def _index_candle_buckets(session: Any) -> None:
    """0004: list the buckets of the candles stored before it (one pass over the candle
    partitions' keys; idempotent, so an interrupted run is simply run again)."""
    from cassandra.concurrent import execute_concurrent_with_args

    insert = session.prepare(
        "INSERT INTO candle_buckets (symbol, interval, bucket) VALUES (?, ?, ?)"
    )
    keys = session.execute("SELECT DISTINCT symbol, interval, bucket FROM candles", timeout=120)
    rows = [(k.symbol, k.interval, k.bucket) for k in keys]
    execute_concurrent_with_args(session, insert, rows, concurrency=32, raise_on_first_error=True)


def _move_user_rules(session: Any) -> None:
    """0006: the users' rules of signal_rules into user_signal_rules' one partition, and their
    count and lookbacks summed into its static columns. Rows are copied as they are (also
    more than the limits: none is dropped; docs/signals.md says what happens to them), each
    with a lightweight transaction like every later write there; an interrupted run is
    simply run again (the totals are computed from what the partition then holds)."""
    import orjson

    from stockapp.tables.signals.spec import lookback_of

    copy = session.prepare(
        "INSERT INTO user_signal_rules (book, name, spec, created) VALUES ('users', ?, ?, ?) "
        "IF NOT EXISTS"
    )
    for row in session.execute("SELECT name, spec, created FROM signal_rules", timeout=120):
        session.execute(copy, (row.name, row.spec, row.created), timeout=60)
    rows = session.execute(
        "SELECT name, spec, rules, lookback FROM user_signal_rules WHERE book = 'users'",
        timeout=120,
    )
    rules, lookback, seen = 0, 0, None
    for row in rows:
        seen = row
        if row.name is not None:
            rules += 1
            lookback += lookback_of(orjson.loads(row.spec))
    if seen is None:
        return  # no rules: the totals start empty (read as 0)
    done = session.execute(
        "UPDATE user_signal_rules SET rules = %s, lookback = %s WHERE book = 'users' "
        "IF rules = %s AND lookback = %s",
        (rules, lookback, seen.rules, seen.lookback),
        timeout=60,
    )
    if not done.one()[0]:
        raise StockappError("the users' rules changed while migration 0006 ran: run it again")


# Python steps that complete a CQL migration (data a CQL statement cannot move), run once,
# right after its statements and before it is recorded as applied.
AFTER: dict[int, Callable[[Any], None]] = {4: _index_candle_buckets, 6: _move_user_rules}


@dataclass(frozen=True)
class MigrationReport:
    keyspace: str
    applied: list[str]
    already: list[str]
    columns: list[str] = field(default_factory=list)  # indicator columns added to candles


_COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def candle_columns(session: Any, keyspace: str) -> set[str]:
    rows = session.execute(
        "SELECT column_name FROM system_schema.columns "
        "WHERE keyspace_name = %s AND table_name = 'candles'",
        (keyspace,),
    )
    return {row.column_name for row in rows}


def add_indicator_columns(session: Any, keyspace: str, outputs: tuple[str, ...]) -> list[str]:
    """Add a column to ``candles`` for each output it lacks; the names added, in order.
    Adding one is a schema change of a few milliseconds: rows already stored read it as
    null, and nothing is rewritten."""
    have = candle_columns(session, keyspace)
    added = []
    for name in outputs:
        if name in have:
            continue
        if not _COLUMN.fullmatch(name):  # the registry's names always match; a guard for CQL
            raise StockappError(f"indicator output {name!r} cannot be a column name")
        session.execute(
            f"ALTER TABLE {keyspace}.candles ADD IF NOT EXISTS {name} double", timeout=60
        )
        added.append(name)
    return added


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.cql")):
        match = _NAME.match(path.name)
        if not match:
            raise StockappError(f"migration file {path.name} is not named NNNN_name.cql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StockappError("two migration files share a version number")
    return found


def validate_keyspace(name: str) -> str:
    if not _KEYSPACE.fullmatch(name):
        raise StockappError(
            f"STOCKAPP_CASSANDRA_KEYSPACE={name!r} is not a valid keyspace name "
            "(letters, digits, underscore; at most 48)"
        )
    return name


def migrate(settings: Settings, keyspace: str | None = None) -> MigrationReport:
    ks = validate_keyspace(keyspace or settings.cassandra_keyspace)
    replication = settings.cassandra_replication.strip()
    if not (replication.startswith("{") and replication.endswith("}")):
        raise StockappError(
            "STOCKAPP_CASSANDRA_REPLICATION must be a CQL map, e.g. "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
    cluster, session = connect(settings, keyspace=None)
    try:
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}")
        session.set_keyspace(ks)
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version int PRIMARY KEY, name text, checksum text, applied_at timestamp)"
        )
        recorded = {
            row.version: row
            for row in session.execute("SELECT version, name, checksum FROM schema_migrations")
        }
        applied, already = [], []
        for migration in load_migrations():
            row = recorded.get(migration.version)
            if row is not None:
                if row.checksum != migration.checksum:
                    raise StockappError(
                        f"migration {migration.name} was edited after it was applied to "
                        f"{ks}; add a new migration file instead"
                    )
                already.append(migration.name)
                continue
            for statement in migration.statements():
                session.execute(statement, timeout=60)
            if migration.version in AFTER:
                AFTER[migration.version](session)
            session.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                "VALUES (%s, %s, %s, toTimestamp(now())) IF NOT EXISTS",
                (migration.version, migration.name, migration.checksum),
            )
            applied.append(migration.name)
        columns = add_indicator_columns(session, ks, settings.indicator_outputs)
        return MigrationReport(ks, applied, already, columns)
    finally:
        cluster.shutdown()


def require_current(session: Any, keyspace: str, outputs: tuple[str, ...] = ()) -> None:
    """Raise if ``keyspace`` lacks a migration this version ships, or a column for one of the
    indicator ``outputs``: a worker started on an older schema would fail at its first write,
    or later, instead of at start."""
    try:
        rows = session.execute(f"SELECT version FROM {keyspace}.schema_migrations")
        recorded = {row.version for row in rows}
    except Exception:  # noqa: BLE001 - no table: a keyspace made by hand or before migrations
        recorded = set()
    missing = [m.name for m in load_migrations() if m.version not in recorded]
    if missing:
        raise StockappError(
            f"Cassandra keyspace {keyspace!r} lacks migration(s) {', '.join(missing)}: run "
            "`stockapp db migrate` (it is idempotent)"
        )
    have = candle_columns(session, keyspace) if outputs else set()
    lacking = [name for name in outputs if name not in have]
    if lacking:
        raise StockappError(
            f"Cassandra table {keyspace}.candles has no column for indicator output(s) "
            f"{', '.join(lacking)}: run `stockapp db migrate` with the same STOCKAPP_INDICATORS"
        )
