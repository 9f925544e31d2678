"""Write and read rows in a real Cassandra; the schema runner is idempotent."""

import datetime as dt

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
