"""Integration tests talk to the real Kafka and Cassandra (`make up`); they never skip.

If the servers do not answer, every test here fails with the one-line reason, which is what a
broken environment should do under `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockapp.connectivity import check_cassandra, check_kafka
from stockapp.db.migrate import migrate
from stockapp.errors import ConnectivityError
from stockapp.settings import Settings, load_settings
from stockapp.sinks.cassandra_session import connect


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> Settings:
    settings = load_settings()
    try:
        check_kafka(settings)
        check_cassandra(settings)
    except ConnectivityError as exc:
        pytest.fail(str(exc), pytrace=False)
    return settings


@pytest.fixture(scope="session")
def test_keyspace(stack: Settings) -> Iterator[str]:
    """A migrated keyspace of this test session's own, dropped at the end."""
    import uuid

    name = f"stockapp_test_{uuid.uuid4().hex[:8]}"
    migrate(stack, keyspace=name)
    yield name
    cluster, session = connect(stack, keyspace=None)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    finally:
        cluster.shutdown()


@pytest.fixture
def cql(stack: Settings, test_keyspace: str) -> Iterator[object]:
    cluster, session = connect(stack, keyspace=test_keyspace)
    yield session
    cluster.shutdown()
