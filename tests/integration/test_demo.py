"""`make demo` on a database that already has data: the live feed continues from the last
stored prices, so the chart shows no jump at a restart."""

from __future__ import annotations

from stockapp.db.migrate import migrate
from stockapp.devstack.demo import backfill_history
from stockapp.sinks.cassandra_session import connect


def test_a_restarted_demo_continues_from_the_stored_prices(stack, unique):
    keyspace = f"stockapp_demo_{unique}"
    migrate(stack, keyspace=keyspace)
    settings = stack.model_copy(update={"cassandra_keyspace": keyspace})
    cluster, session = connect(settings, keyspace=keyspace)
    try:
        for symbol, price in (("AAPL", 251.25), ("MSFT", 402.5), ("ZZZZ", 1.0)):
            session.execute(
                "INSERT INTO symbols (symbol, last_price, last_ts) VALUES (%s, %s, 0)",
                (symbol, price),
            )
        session.execute(
            "INSERT INTO state_seeds (symbol, state, source) VALUES ('AAPL', '{}', 'test')"
        )
        # Only the simulator's own symbols: it has no model for the others.
        assert backfill_history(settings) == {"AAPL": 251.25, "MSFT": 402.5}
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
