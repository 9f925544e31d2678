"""Kafka with SASL_SSL and Cassandra with a login and TLS, as real servers: a private secure
stack (`STOCKAPP_STACK_SECURE=true`, own directory and ports) runs a stream from the producer
through a worker into Cassandra; wrong credentials, an untrusted certificate and a missing
client certificate each stop a command at start with one clear line; no secret is logged."""

from __future__ import annotations

import os
import secrets
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from stockapp.devstack.settings import DevstackSettings
from stockapp.settings import load_settings
from stockapp.sinks.cassandra_session import connect
from tests.helpers import BIN, free_port, run, wait_http
from tests.integration.workers import Worker, wait_for, worker_env

COUNT = 300  # quotes of two symbols, a minute and a half of event time each
START = "2026-01-05T14:30:00+00:00"


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs if not name.startswith("#")}


@pytest.fixture(scope="module")
def secure(stack: DevstackSettings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secure")
    stack_dir = tmp / "stack"
    ports = {
        "STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "STOCKAPP_STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "STOCKAPP_STACK_KAFKA_SASL_SSL_PORT": str(free_port()),
        "STOCKAPP_STACK_KAFKA_SSL_PORT": str(free_port()),
        "STOCKAPP_CASSANDRA_PORT": str(free_port()),
        "STOCKAPP_STACK_CASSANDRA_STORAGE_PORT": str(free_port()),
    }
    stack_env = {"STOCKAPP_STACK_DIR": str(stack_dir), "STOCKAPP_STACK_SECURE": "true", **ports}
    # Reuse the shared stack's jars instead of copying 110 MB again.
    for server in ("kafka", "cassandra"):
        (stack_dir / server).mkdir(parents=True)
        os.symlink(stack.stack_dir / server / "lib", stack_dir / server / "lib")
    devstack = [str(BIN / "python"), "-m", "stockapp.devstack"]
    try:
        up = run(devstack + ["up"], env=stack_env)
        assert up.returncode == 0, up.stdout + up.stderr
        client = _env_file(stack_dir / "secure.env")
        yield {
            "env": {**ports, **client},
            "tls": stack_dir / "tls",
            "kafka_password": (stack_dir / "tls" / "kafka.password").read_text().strip(),
            "cassandra_password": (stack_dir / "tls" / "cassandra.password").read_text().strip(),
            "tmp": tmp,
        }
    finally:
        run(devstack + ["down"], env=stack_env)


def _stockapp(env: dict[str, str], *args: str):
    return run([str(BIN / "stockapp"), *args], env=env, timeout=120)


def _one_line_error(result) -> str:
    """The command failed with one ``stockapp: error:`` line and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("stockapp: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_stream_runs_through_sasl_ssl_kafka_and_tls_cassandra(secure):
    unique = secrets.token_hex(4)
    keyspace = f"stockapp_tls_{unique}"
    env = worker_env(
        "tls",
        unique,
        keyspace,
        secure["tmp"] / "data",
        **secure["env"],
        STOCKAPP_LOG_LEVEL="DEBUG",  # the most a worker logs: no secret may be in it
    )
    migrated = _stockapp(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    # The three mechanisms, each against the real broker: the check by SCRAM-SHA-256, the
    # producer by PLAIN, the worker by SCRAM-SHA-512 (the stack's default).
    checked = _stockapp({**env, "STOCKAPP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}, "check")
    assert checked.returncode == 0, checked.stderr
    assert "kafka: 1 broker(s)" in checked.stdout
    produced = _stockapp(
        {**env, "STOCKAPP_KAFKA_SASL_MECHANISM": "PLAIN"},
        *("produce", "--source", "simulator", "--symbols", "AAPL,MSFT", "--rate", "0"),
        *("--count", str(COUNT), "--pack", "1", "--start", START, "--speedup", "1000"),
    )
    assert produced.returncode == 0, produced.stderr
    assert f"sent {COUNT} quotes" in produced.stdout + produced.stderr

    worker = Worker(env, secure["tmp"] / f"worker-{unique}.log")
    port = env["STOCKAPP_WEB_PORT"]
    try:
        worker.start()
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        wait_for(lambda: worker.stats().get("quotes", 0) >= COUNT, 180, "all quotes", worker)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/candles/AAPL?interval=1m", timeout=10
        ) as response:
            candles = orjson.loads(response.read())["candles"]
        # The closed minutes come from Cassandra, read over TLS with the test's login.
        closed = [c for c in candles if c["closed"]]
        assert len(closed) >= 2 and all(c["v"] > 0 for c in closed), candles
    finally:
        worker.stop()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings()
    cluster, session = connect(settings, keyspace=keyspace)
    try:
        assert session.execute("SELECT count(*) FROM quotes").one()[0] == COUNT
        assert session.execute("SELECT count(*) FROM candles").one()[0] > 0
    finally:
        cluster.shutdown()
    logs = worker.log.read_text() + produced.stdout + produced.stderr + migrated.stderr
    for secret in (secure["kafka_password"], secure["cassandra_password"]):
        assert secret not in logs


@pytest.mark.parametrize("command", [["check"], ["worker"], ["produce", "--count", "1"]])
def test_a_wrong_kafka_password_fails_at_start_in_one_line(secure, command):
    wrong = "wrong-" + secrets.token_hex(6)
    env = {**secure["env"], "STOCKAPP_KAFKA_SASL_PASSWORD": wrong}
    started = time.monotonic()
    line = _one_line_error(_stockapp(env, *command))
    assert "refused the credentials of user 'stockapp' (SCRAM-SHA-512)" in line, line
    assert wrong not in line and time.monotonic() - started < 60


def test_a_wrong_cassandra_password_fails_at_start_in_one_line(secure):
    wrong = "wrong-" + secrets.token_hex(6)
    env = {**secure["env"], "STOCKAPP_CASSANDRA_PASSWORD": wrong}
    result = _stockapp(env, "check")
    line = _one_line_error(result)
    assert "refused the credentials of user 'stockapp'" in line, line
    assert wrong not in result.stdout + result.stderr


def test_an_untrusted_certificate_fails_at_start_in_one_line(secure):
    """Without the stack's CA the client trusts only the system's CAs, which did not sign the
    servers' certificates."""
    env = {**secure["env"], "STOCKAPP_KAFKA_SSL_CAFILE": ""}
    line = _one_line_error(_stockapp(env, "check"))
    assert "Kafka at 127.0.0.1:" in line and "TLS certificate is not trusted" in line, line
    assert "STOCKAPP_KAFKA_SSL_CAFILE" in line
    env = {**secure["env"], "STOCKAPP_CASSANDRA_SSL_CAFILE": ""}
    line = _one_line_error(_stockapp(env, "check"))
    assert "Cassandra at 127.0.0.1:" in line and "TLS certificate is not trusted" in line, line


def test_a_listener_that_requires_a_client_certificate(secure):
    tls = secure["tls"]
    env = {
        **secure["env"],
        "STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{secure['env']['STOCKAPP_STACK_KAFKA_SSL_PORT']}",
        "STOCKAPP_KAFKA_SECURITY_PROTOCOL": "SSL",
        "STOCKAPP_KAFKA_SASL_USERNAME": "",
        "STOCKAPP_KAFKA_SASL_PASSWORD_FILE": "",
    }
    with_cert = {
        **env,
        "STOCKAPP_KAFKA_SSL_CERTFILE": str(tls / "client.pem"),
        "STOCKAPP_KAFKA_SSL_KEYFILE": str(tls / "client.key"),
    }
    checked = _stockapp(with_cert, "check")
    assert checked.returncode == 0, checked.stderr
    line = _one_line_error(_stockapp(env, "check"))
    assert "client certificate" in line, line
    # Cassandra requires one too.
    env = {
        **secure["env"],
        "STOCKAPP_CASSANDRA_SSL_CERTFILE": "",
        "STOCKAPP_CASSANDRA_SSL_KEYFILE": "",
    }
    line = _one_line_error(_stockapp(env, "check"))
    assert "Cassandra at" in line and "client certificate" in line, line


def test_a_plaintext_client_is_told_the_servers_want_tls(secure):
    env = {
        **secure["env"],
        "STOCKAPP_CASSANDRA_SSL": "false",
        "STOCKAPP_CASSANDRA_SSL_CAFILE": "",
        "STOCKAPP_CASSANDRA_SSL_CERTFILE": "",
        "STOCKAPP_CASSANDRA_SSL_KEYFILE": "",
    }
    line = _one_line_error(_stockapp(env, "check"))
    assert "Cassandra at" in line and "STOCKAPP_CASSANDRA_SSL=true" in line, line
    env = {**secure["env"], "STOCKAPP_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    env["STOCKAPP_KAFKA_SSL_CAFILE"] = ""
    line = _one_line_error(_stockapp(env, "check"))
    assert "Kafka at" in line and "is it a SASL_PLAINTEXT listener?" in line, line
