"""Opening a Cassandra session from the settings, with errors a user can act on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stockapp.errors import ConnectivityError
from stockapp.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session


def connect(
    settings: Settings, keyspace: str | None, timeout: float | None = None
) -> tuple[Cluster, Session]:
    """Return ``(cluster, session)``; the caller shuts the cluster down."""
    from cassandra import InvalidRequest
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster, NoHostAvailable
    from cassandra.policies import DCAwareRoundRobinPolicy

    # The driver logs each failed host at WARNING/ERROR; one clear error is raised instead.
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    auth = None
    if settings.cassandra_username:
        auth = PlainTextAuthProvider(settings.cassandra_username, settings.cassandra_password)
    cluster = Cluster(
        contact_points=list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        auth_provider=auth,
        load_balancing_policy=DCAwareRoundRobinPolicy(),
        protocol_version=5,
        connect_timeout=timeout or settings.cassandra_connect_timeout,
        control_connection_timeout=timeout or settings.cassandra_connect_timeout,
    )
    try:
        session = cluster.connect(keyspace)
    except (NoHostAvailable, InvalidRequest) as exc:
        cluster.shutdown()
        # A missing keyspace surfaces as NoHostAvailable("... using keyspace 'x'") once the
        # control connection is up; an unreachable server fails before that, differently.
        text = str(exc)
        if keyspace and ("using keyspace" in text or "does not exist" in text):
            raise ConnectivityError(
                f"Cassandra keyspace {keyspace!r} does not exist: run `stockapp db migrate`"
            ) from None
        hosts = ",".join(settings.cassandra_hosts)
        raise ConnectivityError(
            f"Cassandra at {hosts}:{settings.cassandra_port} is not reachable. "
            "Start the local stack with `make up`, or set STOCKAPP_CASSANDRA_HOSTS / "
            "STOCKAPP_CASSANDRA_PORT."
        ) from None
    except Exception as exc:  # noqa: BLE001 - e.g. auth or protocol errors: report, don't trace
        cluster.shutdown()
        raise ConnectivityError(
            f"Cassandra connection failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
    return cluster, session
