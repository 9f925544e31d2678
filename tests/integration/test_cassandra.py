"""Write and read rows in a real Cassandra; the schema runner is idempotent."""

import datetime as dt
from dataclasses import replace

from stockapp.db.migrate import load_migrations, migrate


def test_write_and_read_a_quote(cql):
    ts = dt.datetime(2026, 11, 23, 14, 30, 15, 250000, tzinfo=dt.UTC)
    insert = cql.prepare(
        "INSERT INTO quotes (symbol, day, ts, source_partition, source_offset, source_index, "
        "price, volume, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for _ in range(2):  # a replayed write lands on the same row
        cql.execute(insert, ("AAPL", ts.date(), ts, 3, 42, 0, 189.12, 300.0, "test"))
    # Two quotes of one packed record at the same millisecond are two rows.
    cql.execute(insert, ("AAPL", ts.date(), ts, 3, 42, 1, 189.13, 100.0, "test"))
    rows = list(
        cql.execute("SELECT * FROM quotes WHERE symbol = %s AND day = %s", ("AAPL", ts.date()))
    )
    assert [(r.source_offset, r.source_index, r.price) for r in rows] == [
        (42, 0, 189.12),
        (42, 1, 189.13),
    ]
    assert rows[0].volume == 300.0
    assert rows[0].ts.replace(tzinfo=dt.UTC) == ts.replace(microsecond=250000)


def test_migrate_twice_is_a_no_op(stack, test_keyspace, cql):
    report = migrate(stack, keyspace=test_keyspace)
    assert report.applied == []
    assert report.already == [m.name for m in load_migrations()]
    recorded = sorted(r.version for r in cql.execute("SELECT version FROM schema_migrations"))
    assert recorded == [m.version for m in load_migrations()]
    tables = {
        r.table_name
        for r in cql.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (test_keyspace,)
        )
    }
    assert {"quotes", "stock_prices", "candles", "symbols", "schema_migrations"} <= tables


async def test_symbols_lists_every_page(stack, test_keyspace, cql):
    """More symbols than one driver page (5,000 rows): the API lists them all."""
    from cassandra.concurrent import execute_concurrent_with_args

    from stockapp.web.reader import Reader

    insert = cql.prepare("INSERT INTO symbols (symbol, last_price) VALUES (?, ?)")
    names = [f"P{i:05d}" for i in range(5_050)]
    execute_concurrent_with_args(cql, insert, [(n, 1.0) for n in names], concurrency=64)
    reader = Reader(stack.model_copy(update={"cassandra_keyspace": test_keyspace}))
    try:
        listed = [s["symbol"] for s in await reader.symbols()]
    finally:
        (await reader.session()).cluster.shutdown()
    assert [n for n in listed if n.startswith("P")] == names


def test_fast_binding_gives_the_drivers_bytes(cql):
    """stockapp.sinks.binding encodes what the sink writes without the driver's per-value
    bookkeeping: the bytes must be the driver's own, for every column type and edge value
    (and other Python types, which it hands to the driver)."""
    from cassandra.query import UNSET_VALUE
    from cassandra.util import Date

    from stockapp.sinks.binding import RowBinder
    from stockapp.tables.indicators import NAMES

    quote = cql.prepare(
        "INSERT INTO quotes (symbol, day, ts, source_partition, source_offset, source_index, "
        "price, volume, bid, ask, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    candle = cql.prepare(
        "INSERT INTO candles (symbol, interval, bucket, start, open, high, low, close, volume, "
        f"trades, closed, {', '.join(NAMES)}) VALUES ({', '.join('?' * (11 + len(NAMES)))})"
    )
    symbol = cql.prepare(
        "UPDATE symbols USING TIMESTAMP ? SET last_price = ?, last_ts = ? WHERE symbol = ?"
    )
    when = dt.datetime(2026, 11, 23, 14, 30, 15, 250000, tzinfo=dt.UTC)
    quotes = [
        ("AAPL", Date(20_000), 1_767_621_600_123, 3, 42, 0, 189.12, 300.0, 1.5, 2.5, "sim"),
        ("BRK.B", Date(0), 0, 0, 2**63 - 1, 9_999, 1e12, 0.0, UNSET_VALUE, None, "ünï"),
        ("^GSPC", Date(-1), -1, -(2**31), -5, 1, float("inf"), 1e15, 1, None, UNSET_VALUE),
        ("X", dt.date(2026, 1, 5), when, 7, 8, 9, 2, 3, float("nan"), 4.0, ""),
    ]
    indicators = [1.25, None, UNSET_VALUE, float("-inf")] * len(NAMES)
    candles = [
        ("AAPL", "1m", 2_945, 1_767_621_600_000, 1.0, 2.0, 0.5, 1.5, 10.0, 3, True)
        + tuple(indicators[: len(NAMES)]),
        ("MSFT", "1d", 0, when, 1, 2, 0, 1, 0, 0, False) + tuple(indicators[1 : len(NAMES) + 1]),
    ]
    symbols = [(1_767_621_600_123_000, 189.12, 1_767_621_600_123, "AAPL"), (0, 1.0, when, "Z")]
    for prepared, rows in ((quote, quotes), (candle, candles), (symbol, symbols)):
        binder = RowBinder(prepared)
        for row in rows:
            ours, theirs = binder.bind(row), prepared.bind(row)
            assert ours.values == theirs.values, row
            assert ours.routing_key == theirs.routing_key, row


async def test_a_sparse_symbols_whole_history_is_read(stack, test_keyspace, cql):
    """Candles far apart (buckets of 10,000 minutes with many empty ones between) written by
    the sink all come back, oldest first, and limits take the newest."""
    from stockapp.sinks.cassandra import CassandraSink
    from stockapp.tables.candle import Bar, Candle
    from stockapp.web.params import CandleQuery
    from stockapp.web.reader import Reader

    minute = 60_000
    bucket = 10_000 * minute
    base = 1_767_621_600_000 - 1_767_621_600_000 % bucket
    # Three candles, 7 and 30 buckets apart, and two in the newest bucket.
    starts = [base - 37 * bucket, base - 30 * bucket, base, base + minute]
    bars = [
        ("SPARSE", "1m", t, t + minute, Bar.tick(t, 10.0 + i, 1.0)) for i, t in enumerate(starts)
    ]
    candles = [replace(Candle.first(*bar), closed=True) for bar in bars]
    sink = CassandraSink(cql, {"1m": minute})
    await sink.write([], candles[:2])
    await sink.write([], candles[2:])
    reader = Reader(stack.model_copy(update={"cassandra_keyspace": test_keyspace}))
    try:
        query = CandleQuery("SPARSE", "1m", None, None, 500)
        got = await reader.candles(query, last_tick_ms=starts[-1])
        assert [c["t"] * 1000 for c in got] == starts
        newest = await reader.candles(CandleQuery("SPARSE", "1m", None, None, 3), starts[-1])
        assert [c["t"] * 1000 for c in newest] == starts[1:]
        ranged = CandleQuery("SPARSE", "1m", starts[0], starts[2], 500)
        assert [c["t"] * 1000 for c in await reader.candles(ranged, starts[-1])] == starts[:2]
    finally:
        (await reader.session()).cluster.shutdown()


def test_migration_0004_indexes_the_candles_stored_before_it(stack, unique):
    """Candles written before the bucket index existed are found after `db migrate`."""
    from stockapp.db.migrate import AFTER
    from stockapp.sinks.cassandra_session import connect

    keyspace = f"stockapp_0004_{unique}"
    migrate(stack, keyspace=keyspace)
    cluster, session = connect(stack, keyspace=keyspace)
    try:
        for bucket in (3, 40):
            session.execute(
                "INSERT INTO candles (symbol, interval, bucket, start, open, high, low, close, "
                "volume, trades, closed) VALUES ('OLD', '1h', %s, %s, 1, 1, 1, 1, 1, 1, true)",
                (bucket, bucket * 10_000 * 3_600_000),
            )
        session.execute("TRUNCATE candle_buckets")  # as before the migration
        AFTER[4](session)
        rows = session.execute(
            "SELECT bucket FROM candle_buckets WHERE symbol = 'OLD' AND interval = '1h'"
        )
        assert [r.bucket for r in rows] == [40, 3]
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
