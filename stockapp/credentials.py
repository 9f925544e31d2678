"""Credentials and TLS for the Kafka and Cassandra clients, built from the settings.

Every client the project opens (the worker's Faust consumer and producer, its end-offset
consumer, the quote producer, the admin and check tools, the Cassandra sessions) takes its
security options from here, so a setting means the same thing to each of them.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

from stockapp.settings import Settings, SettingsError


def _tls(
    prefix: str,
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    key_password: str,
    check_hostname: bool,
) -> ssl.SSLContext:
    variable = f"STOCKAPP_{prefix}_SSL"
    try:
        # Verifies the server's chain against the CA file, or the system's trust store.
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except OSError as exc:  # ssl.SSLError is one: not PEM; or the file went away
        problem = f"{variable}_CAFILE={cafile} is not a readable PEM CA file ({_why(exc)})"
        raise SettingsError(problem) from None
    # Turning the name check off still verifies the chain: only the name may differ.
    context.check_hostname = check_hostname
    if certfile is not None:
        try:
            context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, key_password)
        except OSError as exc:
            raise SettingsError(
                f"{variable}_CERTFILE={certfile} and its key could not be loaded ({_why(exc)}): "
                f"check {variable}_KEYFILE and {variable}_KEY_PASSWORD"
            ) from None
    return context


def _why(exc: OSError) -> str:
    return str(getattr(exc, "reason", None) or exc.strerror or exc)


def kafka_tls(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    return _tls(
        "KAFKA",
        settings.kafka_ssl_cafile,
        settings.kafka_ssl_certfile,
        settings.kafka_ssl_keyfile,
        settings.kafka_ssl_key_secret,
        settings.kafka_ssl_check_hostname,
    )


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin, bare client)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = kafka_tls(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_secret
    return options


def faust_credentials(settings: Settings) -> Any:
    """The same options in Faust's form (its ``broker_credentials``); None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    context = kafka_tls(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_secret,
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    return None


def cassandra_tls(settings: Settings) -> ssl.SSLContext | None:
    if not settings.cassandra_ssl:
        return None
    return _tls(
        "CASSANDRA",
        settings.cassandra_ssl_cafile,
        settings.cassandra_ssl_certfile,
        settings.cassandra_ssl_keyfile,
        settings.cassandra_ssl_key_secret,
        settings.cassandra_ssl_check_hostname,
    )


def cassandra_auth(settings: Settings) -> Any:
    if not settings.cassandra_username:
        return None
    from cassandra.auth import PlainTextAuthProvider

    return PlainTextAuthProvider(settings.cassandra_username, settings.cassandra_secret)


def redact(text: str, settings: Settings) -> str:
    """``text`` with every secret the settings hold replaced by ``***``."""
    for secret in settings.secrets:
        text = text.replace(secret, "***")
    return text


def tls_refusal(where: str, service: str, error: BaseException, client_cert: bool) -> str:
    """What a TLS failure means for the user, in one line; empty if ``error`` is not one.

    The drivers wrap these errors differently (the Cassandra driver turns a failed
    verification into an ``OSError`` that quotes it), so the text is what is read.
    """
    text = str(error)
    variable = f"STOCKAPP_{service}_SSL"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        found = re.search(r"certificate verify failed: (.*?)(?: \(_ssl|$)", text)
        why = found.group(1) if found else "verification failed"
        if "mismatch" in why:
            return (
                f"{where}: its TLS certificate is not for this address ({why}); connect by a "
                f"name the certificate lists, or set {variable}_CHECK_HOSTNAME=false"
            )
        return (
            f"{where}: its TLS certificate is not trusted ({why}); set {variable}_CAFILE to the "
            "CA that signed it"
        )
    if "CERTIFICATE_REQUIRED" in text or "BAD_CERTIFICATE" in text:
        if not client_cert:
            return (
                f"{where} requires a client certificate: set {variable}_CERTFILE and "
                f"{variable}_KEYFILE"
            )
        return (
            f"{where} refused the client certificate ({variable}_CERTFILE): is it signed by a "
            "CA the server trusts, and not expired?"
        )
    if "EOF occurred" in text or "UNEXPECTED_EOF" in text:
        # The server hung up mid-handshake: a TLS 1.3 server that wanted a certificate may do
        # that before its alert arrives, and so may a port that does not speak TLS at all.
        return (
            f"{where} closed the connection during the TLS handshake: if it requires a client "
            f"certificate, set {variable}_CERTFILE and {variable}_KEYFILE (or check them); "
            "otherwise check that the port is a TLS port"
        )
    if isinstance(error, ssl.SSLError):
        reason = error.reason or text
        return (
            f"{where}: the TLS handshake failed ({reason}); is the port a TLS listener? "
            f"(STOCKAPP_{service}_{'SECURITY_PROTOCOL' if service == 'KAFKA' else 'SSL'})"
        )
    return ""
