"""Opening a Cassandra session from the settings, with errors a user can act on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from stockapp.credentials import cassandra_auth, cassandra_tls, redact, tls_refusal
from stockapp.errors import ConnectivityError
from stockapp.logs import RepeatFilter
from stockapp.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session


def connect(
    settings: Settings, keyspace: str | None, timeout: float | None = None
) -> tuple[Cluster, Session]:
    """Return ``(cluster, session)``; the caller shuts the cluster down."""
    from cassandra import ConsistencyLevel, InvalidRequest
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    auth = cassandra_auth(settings)
    tls = cassandra_tls(settings)
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(
            DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc)
        ),
        consistency_level=getattr(ConsistencyLevel, settings.cassandra_consistency),
    )
    cluster = Cluster(
        contact_points=list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        auth_provider=auth,
        ssl_context=tls,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        connect_timeout=timeout or settings.cassandra_connect_timeout,
        control_connection_timeout=timeout or settings.cassandra_connect_timeout,
    )
    try:
        with _quiet_driver():
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
        # The driver gives a dict of host -> error, or a list when no host was tried.
        errors = getattr(exc, "errors", None) or []
        refused = _refusal(settings, errors.values() if isinstance(errors, dict) else errors)
        if refused:
            raise ConnectivityError(redact(refused, settings)) from None
        dcs = _data_centres(settings, auth, tls, timeout or settings.cassandra_connect_timeout)
        if dcs and settings.cassandra_local_dc not in dcs:
            raise _wrong_dc(settings, dcs) from None
        hosts = ",".join(settings.cassandra_hosts)
        raise ConnectivityError(
            f"Cassandra at {hosts}:{settings.cassandra_port} is not reachable. "
            "Start the local stack with `make up`, or set STOCKAPP_CASSANDRA_HOSTS / "
            "STOCKAPP_CASSANDRA_PORT."
        ) from None
    except Exception as exc:  # noqa: BLE001 - e.g. auth or protocol errors: report, don't trace
        cluster.shutdown()
        text = f"Cassandra connection failed: {type(exc).__name__}: {exc}".splitlines()[0]
        raise ConnectivityError(redact(text, settings)) from None
    return cluster, session


def _refusal(settings: Settings, errors: Iterable[BaseException]) -> str:
    """The reason a node refused this client (TLS or credentials), in one line; empty when
    the failures were of reaching it."""
    from cassandra import AuthenticationFailed

    where = f"Cassandra at {','.join(settings.cassandra_hosts)}:{settings.cassandra_port}"
    client_cert = settings.cassandra_ssl_certfile is not None
    for error in errors:
        tls = tls_refusal(where, "CASSANDRA", error, client_cert)
        if tls:
            return tls
        if isinstance(error, ConnectionResetError) and not settings.cassandra_ssl:
            # A node that requires TLS hangs up on a plaintext hello; one that is not there
            # refuses the connection instead.
            return (
                f"{where} reset the connection: if it requires TLS, set STOCKAPP_CASSANDRA_SSL="
                "true and STOCKAPP_CASSANDRA_SSL_CAFILE"
            )
        if isinstance(error, AuthenticationFailed):
            if not settings.cassandra_username:
                return (
                    f"{where} requires a login: set STOCKAPP_CASSANDRA_USERNAME and "
                    "STOCKAPP_CASSANDRA_PASSWORD (or STOCKAPP_CASSANDRA_PASSWORD_FILE)"
                )
            return (
                f"{where} refused the credentials of user {settings.cassandra_username!r}: check "
                "STOCKAPP_CASSANDRA_USERNAME and the password"
            )
    return ""


@contextlib.contextmanager
def _quiet_driver() -> Iterator[None]:
    """While connecting, the driver logs each failed host at WARNING/ERROR; the caller raises
    one clear error instead. Afterwards its warnings (a node down, a retry) get through, at
    most once per message per 10 s (stockapp.logs.RepeatFilter)."""
    driver = logging.getLogger("cassandra")
    # A logger's filters do not apply to its children, and the driver logs on its modules'.
    repeats = RepeatFilter()
    for name in [n for n in logging.Logger.manager.loggerDict if n.split(".")[0] == "cassandra"]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(repeats)
    level = driver.level
    driver.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        driver.setLevel(level)


def _wrong_dc(settings: Settings, dcs: set[str]) -> ConnectivityError:
    return ConnectivityError(
        f"STOCKAPP_CASSANDRA_LOCAL_DC={settings.cassandra_local_dc!r} is not a data centre of "
        f"this cluster (it has {', '.join(sorted(dcs))})"
    )


def _data_centres(
    settings: Settings, auth: object, tls: ssl.SSLContext | None, timeout: float
) -> set[str]:
    """The cluster's data centres, asked without a DC preference (a wrong local DC leaves the
    DC-aware policy no host at all, which would read as "not reachable"); empty if even that
    connection fails."""
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    probe = Cluster(
        contact_points=list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        auth_provider=auth,
        ssl_context=tls,
        load_balancing_policy=RoundRobinPolicy(),
        protocol_version=5,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
    )
    try:
        with _quiet_driver():
            probe.connect()
        return {h.datacenter for h in probe.metadata.all_hosts() if h.datacenter}
    except Exception:  # noqa: BLE001 - no answer at all: the caller reports it as unreachable
        return set()
    finally:
        probe.shutdown()


class LazySession:
    """A session of the settings' keyspace, connected on first use (in a thread: connecting
    blocks) and then shared: the web reader and the rules store of a worker use one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        async with self._lock:
            if self._session is None:
                loop = asyncio.get_running_loop()
                _, self._session = await loop.run_in_executor(
                    None, connect, self.settings, self.settings.cassandra_keyspace
                )
            return self._session
