"""Security settings: how they reach each client, what contradicts, and secrets kept out of
error messages and logs (the real servers are in tests/integration/test_secure_servers.py)."""

from __future__ import annotations

import logging
import ssl
import subprocess

import faust
import pytest

from stockapp.credentials import (
    cassandra_auth,
    cassandra_tls,
    faust_credentials,
    kafka_options,
    redact,
)
from stockapp.logs import redact_secrets
from stockapp.settings import SettingsError, load_settings


@pytest.fixture
def ca(tmp_path):
    """A self-signed CA and a client certificate it signed, made with openssl."""

    def run(*args: str) -> None:
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)

    run(
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key"),
        *("-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA"),
    )
    run(
        *("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key"),
        *("-out", "client.csr", "-subj", "/CN=client"),
    )
    run(
        *("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", "client.pem"),
    )
    return tmp_path


def _settings(monkeypatch, **values: str):
    for name, value in values.items():
        monkeypatch.setenv(f"STOCKAPP_{name}", value)
    return load_settings()


def test_plaintext_by_default():
    settings = load_settings()
    assert kafka_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert cassandra_tls(settings) is None and cassandra_auth(settings) is None


def test_sasl_ssl_reaches_aiokafka_and_faust_alike(monkeypatch, ca, tmp_path):
    (tmp_path / "password").write_text("pw-from-file\n")
    settings = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="stockapp",
        KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "password"),
        KAFKA_SSL_CAFILE=str(ca / "ca.pem"),
    )
    options = kafka_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "stockapp",
        "pw-from-file",
    )
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.password == "pw-from-file"
    # A rotated secret file is read at the next connection.
    (tmp_path / "password").write_text("rotated\n")
    assert kafka_options(settings)["sasl_plain_password"] == "rotated"


def test_sasl_plaintext_has_no_tls(monkeypatch):
    settings = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    assert "ssl_context" not in kafka_options(settings)
    assert faust_credentials(settings).protocol.value == "SASL_PLAINTEXT"


def test_ssl_with_a_client_certificate(monkeypatch, ca):
    settings = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(ca / "ca.pem"),
        KAFKA_SSL_CERTFILE=str(ca / "client.pem"),
        KAFKA_SSL_KEYFILE=str(ca / "client.key"),
        KAFKA_SSL_CHECK_HOSTNAME="false",
    )
    options = kafka_options(settings)
    assert set(options) == {"security_protocol", "ssl_context"}
    # The name check off, the chain still verified.
    assert not options["ssl_context"].check_hostname
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)


def test_cassandra_tls_and_login(monkeypatch, ca, tmp_path):
    (tmp_path / "cql").write_text("cql-pw\n")
    settings = _settings(
        monkeypatch,
        CASSANDRA_USERNAME="stockapp",
        CASSANDRA_PASSWORD_FILE=str(tmp_path / "cql"),
        CASSANDRA_SSL="true",
        CASSANDRA_SSL_CAFILE=str(ca / "ca.pem"),
        CASSANDRA_SSL_CERTFILE=str(ca / "client.pem"),
        CASSANDRA_SSL_KEYFILE=str(ca / "client.key"),
    )
    assert cassandra_tls(settings).verify_mode == ssl.CERT_REQUIRED
    auth = cassandra_auth(settings)
    assert (auth.username, auth.password) == ("stockapp", "cql-pw")


def test_a_key_that_does_not_match_its_certificate_is_named(monkeypatch, ca, tmp_path):
    subprocess.run(
        ["openssl", "genrsa", "-out", str(tmp_path / "other.key"), "2048"],
        check=True,
        capture_output=True,
    )
    settings = _settings(
        monkeypatch,
        CASSANDRA_SSL="true",
        CASSANDRA_SSL_CERTFILE=str(ca / "client.pem"),
        CASSANDRA_SSL_KEYFILE=str(tmp_path / "other.key"),
    )
    with pytest.raises(SettingsError, match="STOCKAPP_CASSANDRA_SSL_CERTFILE=.* could not be"):
        cassandra_tls(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "hunter2-secret"},
            "STOCKAPP_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs STOCKAPP_KAFKA_SASL_USERNAME",
        ),
        (
            {"KAFKA_SSL_CAFILE": "/etc/hostname"},
            "STOCKAPP_KAFKA_SSL_CAFILE is set but STOCKAPP_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"CASSANDRA_SSL_CAFILE": "/etc/hostname", "CASSANDRA_PASSWORD": "hunter2-secret"},
            "STOCKAPP_CASSANDRA_SSL_CAFILE is set but STOCKAPP_CASSANDRA_SSL is not true",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hostname"},
            "STOCKAPP_KAFKA_SSL_KEYFILE is set without STOCKAPP_KAFKA_SSL_CERTFILE",
        ),
        (
            {"CASSANDRA_PASSWORD": "hunter2-secret"},
            "STOCKAPP_CASSANDRA_PASSWORD is set without STOCKAPP_CASSANDRA_USERNAME",
        ),
        (
            {"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/secret"},
            "STOCKAPP_KAFKA_SASL_PASSWORD_FILE='/nonexistent/secret' is not a readable file",
        ),
    ],
)
def test_contradicting_settings_stop_at_start_without_showing_secrets(monkeypatch, values, message):
    with pytest.raises(SettingsError) as caught:
        _settings(monkeypatch, **values)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_secrets_are_redacted_from_text_and_logs(monkeypatch, caplog):
    settings = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="kafka-pw-123",
        CASSANDRA_USERNAME="c",
        CASSANDRA_PASSWORD="cql-pw-456",
    )
    assert redact("failed: kafka-pw-123 / cql-pw-456", settings) == "failed: *** / ***"
    plain = logging.getLogRecordFactory()
    try:
        redact_secrets(settings.secrets)
        with caplog.at_level(logging.INFO):
            logging.getLogger("some.library").info("connecting with %s", "cql-pw-456")
            logging.getLogger("some.library").info("nothing secret %d", 7)
    finally:
        logging.setLogRecordFactory(plain)
    assert [r.getMessage() for r in caplog.records] == ["connecting with ***", "nothing secret 7"]


@pytest.mark.parametrize(
    ("error", "client_cert", "expected"),
    [
        (
            # How the Cassandra driver reports a failed verification: an OSError quoting it.
            PermissionError(
                1,
                "Tried connecting to [('10.0.0.5', 9042)]. Last error: [SSL: "
                "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
                "certificate in certificate chain (_ssl.c:1006)",
            ),
            False,
            "X: its TLS certificate is not trusted (self-signed certificate in certificate "
            "chain); set STOCKAPP_CASSANDRA_SSL_CAFILE to the CA that signed it",
        ),
        (
            ssl.SSLCertVerificationError(
                1,
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname "
                "mismatch, certificate is not valid for 'db.example'. (_ssl.c:1006)",
            ),
            False,
            "X: its TLS certificate is not for this address (Hostname mismatch, certificate "
            "is not valid for 'db.example'.); connect by a name the certificate lists, or set "
            "STOCKAPP_CASSANDRA_SSL_CHECK_HOSTNAME=false",
        ),
        (
            ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate"),
            False,
            "X requires a client certificate: set STOCKAPP_CASSANDRA_SSL_CERTFILE and "
            "STOCKAPP_CASSANDRA_SSL_KEYFILE",
        ),
        (
            ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"),
            True,
            "X refused the client certificate (STOCKAPP_CASSANDRA_SSL_CERTFILE): is it signed "
            "by a CA the server trusts, and not expired?",
        ),
        (ConnectionRefusedError(111, "Connection refused"), False, ""),
    ],
)
def test_tls_failures_are_told_in_one_line(error, client_cert, expected):
    from stockapp.credentials import tls_refusal

    assert tls_refusal("X", "CASSANDRA", error, client_cert) == expected
