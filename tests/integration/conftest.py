"""Integration tests talk to the real Kafka and Cassandra (`make up`); they never skip.

If the servers do not answer, every test here fails with the one-line reason, which is what a
broken environment should do under `make test`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockapp.connectivity import check_cassandra, check_kafka
from stockapp.db.migrate import migrate
from stockapp.devstack.settings import DevstackSettings, load_devstack_settings
from stockapp.errors import ConnectivityError, StockappError
from stockapp.settings import Settings
from stockapp.sinks.cassandra_session import connect

# The container tests build an image and start containers: minutes, so after every other
# test (pytest would run them among the rest, in the files' alphabetical order). The image's
# before Compose's, which runs the image they built.
LAST = ("test_image.py", "test_compose.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)

    def rank(item: pytest.Item) -> int:
        name = item.fspath.basename
        return LAST.index(name) + 1 if name in LAST else 0

    items.sort(key=rank)  # stable: each group keeps its order


@pytest.fixture(scope="session")
def stockapp_image(request: pytest.FixtureRequest) -> str:
    """The stockapp image, built as `make image` builds it (cached layers make a rebuild of
    an unchanged tree take seconds); which bases it used and how long it took are printed."""
    import time

    from stockapp.devstack import images, podman

    started = time.monotonic()
    try:
        chosen, seconds = images.build(load_devstack_settings(), quiet=True)
    except StockappError as exc:
        pytest.fail(str(exc), pytrace=False)
    size = podman.image_size(images.IMAGE) / 1e6
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (
        f"image {images.IMAGE}: {size:.0f} MB, built in {seconds:.0f} s on {chosen.line()} "
        f"({time.monotonic() - started:.0f} s in all)"
    )
    if reporter is not None:
        reporter.write_line(f"\n{line}")
    return images.IMAGE


@pytest.fixture(scope="session")
def stack() -> DevstackSettings:
    """The settings the tests run with, the local stack's included (its directory, which
    private stacks share the jars of, and the servers `up` restarts)."""
    settings = load_devstack_settings()
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
