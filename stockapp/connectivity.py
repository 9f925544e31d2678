"""Protocol-level checks that Kafka and Cassandra answer.

A TCP connect is not enough: a port can be open while the broker is still loading its metadata,
or Cassandra may accept connections before the native protocol is ready. These checks ask for
real answers: a Kafka metadata response and ``SELECT release_version FROM system.local``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from stockapp.credentials import kafka_options, redact, tls_refusal
from stockapp.errors import ConnectivityError
from stockapp.settings import Settings, host_port
from stockapp.timeouts import within


def _drop_probe_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    if context.get("message", "").startswith("Future exception was never retrieved") and (
        isinstance(context.get("exception"), OSError)  # ssl.SSLError is one
    ):
        return
    loop.default_exception_handler(context)


def quiet_refused_connections() -> None:
    """For a loop about to end with a one-line reason: a connection the broker refused can
    leave aiokafka's read task failed with no one to read it, and asyncio would log that,
    with a traceback, when the task is collected, perhaps after the line was printed."""
    asyncio.get_running_loop().set_exception_handler(_drop_probe_errors)


async def _kafka_metadata(settings: Settings, timeout: float) -> int:
    from aiokafka import AIOKafkaClient

    quiet_refused_connections()  # the loop of check_kafka's own asyncio.run
    client = AIOKafkaClient(
        bootstrap_servers=",".join(settings.kafka_bootstrap),
        request_timeout_ms=int(timeout * 1000),
        **kafka_options(settings),
    )
    try:
        await within(timeout, client.bootstrap())
        return len(client.cluster.brokers())
    finally:
        await client.close()


async def kafka_problem(settings: Settings, timeout: float = 5.0) -> str:
    """Why the brokers refuse this client, in one line; empty if the first one accepts it.

    aiokafka's bootstrap only says "Unable to bootstrap" (it logs each broker's reason and
    goes on to the next), so one connection is opened here by hand to learn the reason: an
    untrusted certificate, a name the certificate does not carry, refused credentials.
    """
    from aiokafka import errors
    from aiokafka.conn import create_conn

    where = f"Kafka at {settings.kafka_bootstrap[0]}"
    host, port = host_port(settings.kafka_bootstrap[0], 9092)
    client_cert = settings.kafka_ssl_certfile is not None
    try:
        options = kafka_options(settings)
        connecting = create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options)
        conn = await within(timeout, connecting)
    except ssl.SSLError as exc:
        return tls_refusal(where, "KAFKA", exc, client_cert)
    except (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError) as exc:
        return (
            f"{where} refused the credentials of user {settings.kafka_sasl_username!r} "
            f"({settings.kafka_sasl_mechanism}): check STOCKAPP_KAFKA_SASL_USERNAME and "
            f"the password ({type(exc).__name__})"
        )
    except errors.UnsupportedSaslMechanismError as exc:
        return f"{where}: {exc} (STOCKAPP_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism})"
    except (TimeoutError, OSError, errors.KafkaError) as exc:
        return _unanswered(settings, where, exc, timeout)
    # With TLS 1.3 a broker that wants a client certificate and got none says so only after
    # the handshake: the first request finds the connection closed.
    from aiokafka.protocol.metadata import MetadataRequest

    try:
        await within(timeout, conn.send(MetadataRequest([])))
    except (TimeoutError, OSError, errors.KafkaError) as exc:
        return _unanswered(settings, where, exc, timeout)
    finally:
        conn.close()
    return ""


def _unanswered(settings: Settings, where: str, exc: BaseException, timeout: float) -> str:
    protocol = settings.kafka_security_protocol
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, ConnectionResetError):
        reason = f"it reset the connection; is it a {protocol} listener?"
    elif isinstance(exc, TimeoutError):
        # A plaintext client at a TLS or SASL port waits for an answer that never comes.
        reason = f"no answer in {timeout:g} s; is it a {protocol} listener?"
    elif "closed" in str(exc).lower():
        # aiokafka reports a TLS alert from the broker (a client certificate it wanted and did
        # not get, or refused) only as a closed connection.
        if protocol.endswith("SSL"):
            return (
                f"{where} closed the TLS connection: if its listener requires a client "
                "certificate, set STOCKAPP_KAFKA_SSL_CERTFILE and _KEYFILE (or check them)"
            )
        reason = f"it closed the connection; is it a {protocol} listener?"
    else:
        reason = type(exc).__name__
    return (
        f"{where} did not answer ({reason}). Start the local stack with `make up`, or set "
        "STOCKAPP_KAFKA_BOOTSTRAP and STOCKAPP_KAFKA_SECURITY_PROTOCOL."
    )


async def _quietly(probe: Any) -> Any:
    quiet_refused_connections()
    return await probe


def check_kafka(settings: Settings, timeout: float = 5.0) -> int:
    """Return the number of brokers in the cluster, or raise :class:`ConnectivityError`."""
    # aiokafka logs every failed attempt at ERROR; the caller reports the outcome once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_kafka_metadata(settings, timeout))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        failure = type(exc).__name__
    problem = asyncio.run(_quietly(kafka_problem(settings, timeout)))
    bootstrap = ",".join(settings.kafka_bootstrap)
    raise ConnectivityError(
        redact(problem, settings)
        or f"Kafka at {bootstrap} did not answer a metadata request ({failure}). "
        "Start the local stack with `make up`, or set STOCKAPP_KAFKA_BOOTSTRAP."
    )


def check_cassandra(settings: Settings, timeout: float = 5.0) -> str:
    """Return Cassandra's release version, or raise :class:`ConnectivityError`."""
    from stockapp.sinks.cassandra_session import connect

    try:
        cluster, session = connect(settings, keyspace=None, timeout=timeout)
    except ConnectivityError:
        raise
    try:
        row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
        return str(row.release_version)
    finally:
        cluster.shutdown()
