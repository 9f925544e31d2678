"""The secure variant of the local stack (``STOCKAPP_STACK_SECURE=true``).

Kafka keeps its plaintext listener (the broker's own traffic) and gains a SASL_SSL listener
(PLAIN and SCRAM users) and an SSL listener that requires a client certificate; Cassandra
requires a login (``PasswordAuthenticator``) and TLS with a client certificate. The TLS
material is made once per stack directory with ``openssl`` and the JDK's ``keytool``: a CA,
the servers' certificate for 127.0.0.1 and localhost, and a client certificate.

This is for trying the security settings and for testing them against real servers; its CA
key lies next to the certificates, so it is no model for a production PKI.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stockapp.devstack.settings import DevstackSettings
from stockapp.errors import StockappError

KAFKA_USER = "stockapp"
KAFKA_MECHANISM = "SCRAM-SHA-512"
# Cassandra makes this superuser on a fresh node. The stack uses it only to check the node
# and to make the clients' own role, CASSANDRA_USER, whose password is random.
CASSANDRA_ADMIN = "cassandra"
CASSANDRA_USER = "stockapp"


@dataclass(frozen=True)
class Material:
    """Where one stack's TLS files and passwords are."""

    dir: Path
    ca: Path
    server_keystore: Path
    truststore: Path
    client_cert: Path
    client_key: Path
    store_password_file: Path
    kafka_password_file: Path
    cassandra_password_file: Path

    @property
    def store_password(self) -> str:
        return self.store_password_file.read_text().strip()

    @property
    def kafka_password(self) -> str:
        return self.kafka_password_file.read_text().strip()

    @property
    def ready(self) -> bool:
        return self.kafka_password_file.exists()


def material(settings: DevstackSettings) -> Material:
    tls = settings.stack_dir / "tls"
    return Material(
        dir=tls,
        ca=tls / "ca.pem",
        server_keystore=tls / "server.p12",
        truststore=tls / "truststore.p12",
        client_cert=tls / "client.pem",
        client_key=tls / "client.key",
        store_password_file=tls / "store.password",
        kafka_password_file=tls / "kafka.password",
        cassandra_password_file=tls / "cassandra.password",
    )


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise StockappError(f"making the stack's TLS files failed: {argv[0]}: {' '.join(detail)}")


def _certificate(tls: Path, name: str, subject: str, extensions: str) -> None:
    """A key and a certificate signed by the stack's CA."""
    (tls / f"{name}.ext").write_text(extensions + "\n")
    _run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key"]
        + ["-out", f"{name}.csr", "-subj", subject],
        tls,
    )
    _run(
        ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key"]
        + ["-CAcreateserial", "-days", "825", "-out", f"{name}.pem", "-extfile", f"{name}.ext"],
        tls,
    )


def ensure_material(settings: DevstackSettings, java: str) -> Material:
    """Make the CA, the certificates, the Java key and trust stores and the passwords once."""
    found = material(settings)
    if found.ready:
        if not found.cassandra_password_file.exists():  # made before the clients' role was
            found.cassandra_password_file.write_text(secrets.token_urlsafe(18) + "\n")
            found.cassandra_password_file.chmod(0o600)
        return found
    tls = found.dir
    tls.mkdir(parents=True, exist_ok=True)
    tls.chmod(0o700)
    password = secrets.token_urlsafe(18)
    found.store_password_file.write_text(password + "\n")
    _run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key"]
        + ["-out", "ca.pem", "-days", "3650", "-subj", "/CN=stockapp local stack CA"]
        + ["-addext", "basicConstraints=critical,CA:TRUE"]
        + ["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        tls,
    )
    _certificate(
        tls,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    )
    _certificate(tls, "client", f"/CN={KAFKA_USER}", "extendedKeyUsage=clientAuth")
    _run(
        ["openssl", "pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key"]
        + ["-certfile", "ca.pem", "-name", "server", "-out", "server.p12"]
        + ["-passout", f"file:{found.store_password_file.name}"],
        tls,
    )
    keytool = str(Path(java).resolve().parent / "keytool")
    found.truststore.unlink(missing_ok=True)  # left by an interrupted run: keytool would refuse
    _run(
        [keytool, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem"]
        + ["-keystore", "truststore.p12", "-storetype", "PKCS12", "-storepass", password],
        tls,
    )
    for path in tls.iterdir():
        path.chmod(0o600)
    found.cassandra_password_file.write_text(secrets.token_urlsafe(18) + "\n")
    # Written last: its presence means the rest is complete.
    found.kafka_password_file.write_text(secrets.token_urlsafe(18) + "\n")
    for path in (found.cassandra_password_file, found.kafka_password_file):
        path.chmod(0o600)
    return found


def client_values(settings: DevstackSettings, admin: bool = False) -> dict[str, object]:
    """The client settings (field names) that reach the secure stack: Kafka by SASL_SSL with
    SCRAM, Cassandra by TLS with a login (the clients' role; ``admin``: the node's
    superuser) and the client certificate."""
    tls = material(settings)
    login: dict[str, object] = {
        "cassandra_username": CASSANDRA_USER,
        "cassandra_password_file": tls.cassandra_password_file,
    }
    if admin:
        login = {"cassandra_username": CASSANDRA_ADMIN, "cassandra_password": CASSANDRA_ADMIN}
    return {
        "kafka_bootstrap": (f"127.0.0.1:{settings.stack_kafka_sasl_ssl_port}",),
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": KAFKA_MECHANISM,
        "kafka_sasl_username": KAFKA_USER,
        "kafka_sasl_password_file": tls.kafka_password_file,
        "kafka_ssl_cafile": tls.ca,
        **login,
        "cassandra_ssl": True,
        "cassandra_ssl_cafile": tls.ca,
        "cassandra_ssl_certfile": tls.client_cert,
        "cassandra_ssl_keyfile": tls.client_key,
    }


def client_settings(settings: DevstackSettings, admin: bool = False) -> DevstackSettings:
    """``settings`` pointed at the secure stack (the stack's own probes use the admin's)."""
    return settings.model_copy(update=client_values(settings, admin))


def ensure_role(settings: DevstackSettings) -> None:
    """The clients' Cassandra role, with the password of this stack's TLS directory (set
    again at each start, so a remade directory's password holds)."""
    from stockapp.sinks.cassandra_session import connect

    try:
        cluster, _ = connect(client_settings(settings), keyspace=None)
        cluster.shutdown()
        return  # the role logs in already
    except StockappError:
        pass
    password = material(settings).cassandra_password_file.read_text().strip()
    cluster, session = connect(client_settings(settings, admin=True), keyspace=None)
    try:
        found = session.execute(
            "SELECT role FROM system_auth.roles WHERE role = %s", (CASSANDRA_USER,)
        ).one()
        # Cassandra refuses a second password change within 5 s: one statement, not two.
        verb = "ALTER ROLE" if found else "CREATE ROLE IF NOT EXISTS"
        statement = f"{verb} {CASSANDRA_USER} WITH PASSWORD = %s AND LOGIN = true"
        session.execute(statement, (password,))
    finally:
        cluster.shutdown()


def env_file(settings: DevstackSettings) -> Path:
    """Write ``<stack_dir>/secure.env``: the variables that point stockapp at this stack
    (``set -a; . .stack/secure.env; set +a``). It names the password files, not the
    passwords."""
    lines = ["# Written by `python -m stockapp.devstack up` with STOCKAPP_STACK_SECURE=true."]
    for field, value in client_values(settings).items():
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        lines.append(f"STOCKAPP_{field.upper()}={'true' if value is True else text}")
    target = settings.stack_dir / "secure.env"
    target.write_text("\n".join(lines) + "\n")
    return target


def kafka_properties(settings: DevstackSettings, tls: Material) -> dict[str, str]:
    """What the broker's properties gain: the two listeners, their users and stores."""
    password = tls.store_password
    plain_users = f'user_{KAFKA_USER}="{tls.kafka_password}"'
    return {
        "listeners_extra": (
            f",SASL_SSL://127.0.0.1:{settings.stack_kafka_sasl_ssl_port}"
            f",SSL://127.0.0.1:{settings.stack_kafka_ssl_port}"
        ),
        "protocols_extra": ",SASL_SSL:SASL_SSL,SSL:SSL",
        "security": "\n".join(
            [
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_ssl.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
                *(
                    f"listener.name.sasl_ssl.{m}.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    for m in ("scram-sha-256", "scram-sha-512")
                ),
                "ssl.keystore.type=PKCS12",
                f"ssl.keystore.location={tls.server_keystore}",
                f"ssl.keystore.password={password}",
                f"ssl.key.password={password}",
                "ssl.truststore.type=PKCS12",
                f"ssl.truststore.location={tls.truststore}",
                f"ssl.truststore.password={password}",
                "listener.name.ssl.ssl.client.auth=required",
            ]
        ),
    }


def scram_users(tls: Material) -> list[str]:
    """The storage tool's arguments that create the SCRAM users when Kafka is formatted."""
    arguments = []
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        arguments += [
            "--add-scram",
            f"{mechanism}=[name={KAFKA_USER},password={tls.kafka_password}]",
        ]
    return arguments


def cassandra_yaml(tls: Material) -> str:
    password = tls.store_password
    return "\n".join(
        [
            "authenticator: PasswordAuthenticator",
            "authorizer: AllowAllAuthorizer",
            "client_encryption_options:",
            "  enabled: true",
            "  optional: false",
            f"  keystore: {tls.server_keystore}",
            f"  keystore_password: {password}",
            f"  truststore: {tls.truststore}",
            f"  truststore_password: {password}",
            "  store_type: PKCS12",
            "  require_client_auth: true",
        ]
    )
