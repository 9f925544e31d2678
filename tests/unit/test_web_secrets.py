"""The web server's secrets (API token, admin token, worker secret) and the refusal to serve an
exposed address openly: each mistake stops the program in one line that names the variable and
never shows the value."""

from __future__ import annotations

import pytest

from stockapp.settings import MIN_SECRET_LENGTH, SettingsError, load_settings

GOOD = "a" * MIN_SECRET_LENGTH
VARIABLES = ("STOCKAPP_API_TOKEN", "STOCKAPP_ADMIN_TOKEN", "STOCKAPP_WORKER_SECRET")


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in VARIABLES + ("STOCKAPP_WEB_HOST", "STOCKAPP_ALLOW_OPEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)


@pytest.mark.parametrize("name", VARIABLES)
def test_a_token_of_only_whitespace_is_an_error_not_an_open_api(monkeypatch, name):
    monkeypatch.setenv(name, "   ")
    with pytest.raises(SettingsError, match=f"^{name}=<hidden> is only whitespace"):
        load_settings()


@pytest.mark.parametrize("name", VARIABLES)
def test_a_short_token_is_refused_without_showing_it(monkeypatch, name):
    monkeypatch.setenv(name, "short-t0ken")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(name) and f"at least {MIN_SECRET_LENGTH} characters" in message
    assert "short-t0ken" not in message and "\n" not in message


def test_a_short_token_in_a_file_names_the_file_setting(monkeypatch, tmp_path):
    secret = tmp_path / "admin"
    secret.write_text("tiny\n")
    monkeypatch.setenv("STOCKAPP_ADMIN_TOKEN_FILE", str(secret))
    with pytest.raises(SettingsError, match="^STOCKAPP_ADMIN_TOKEN_FILE .*at least 16 characters"):
        load_settings()


def test_a_token_must_be_sendable_in_a_header(monkeypatch):
    monkeypatch.setenv("STOCKAPP_API_TOKEN", "tøken-with-a-non-ascii-letter")
    with pytest.raises(SettingsError, match="printable ASCII"):
        load_settings()
    monkeypatch.setenv("STOCKAPP_API_TOKEN", "two words in one token")
    with pytest.raises(SettingsError, match="printable ASCII"):
        load_settings()


def test_the_secrets_are_read_from_their_variables_or_files(monkeypatch, tmp_path):
    worker = tmp_path / "worker"
    worker.write_text("w" * 40 + "\n")
    monkeypatch.setenv("STOCKAPP_API_TOKEN", "v" * 20)
    monkeypatch.setenv("STOCKAPP_ADMIN_TOKEN", "x" * 20)
    monkeypatch.setenv("STOCKAPP_WORKER_SECRET_FILE", str(worker))
    s = load_settings()
    assert (s.api_secret, s.admin_secret, s.inter_worker_secret) == ("v" * 20, "x" * 20, "w" * 40)
    assert {"v" * 20, "x" * 20, "w" * 40} <= set(s.secrets)  # redacted from logs
    assert "x" * 20 not in repr(s) and "w" * 40 not in repr(s)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("STOCKAPP_ADMIN_TOKEN", "STOCKAPP_API_TOKEN"),
        ("STOCKAPP_WORKER_SECRET", "STOCKAPP_API_TOKEN"),
        ("STOCKAPP_WORKER_SECRET", "STOCKAPP_ADMIN_TOKEN"),
    ],
)
def test_the_secrets_must_differ(monkeypatch, a, b):
    """A viewer who knows the API token must not be able to write rules or sign as a worker."""
    monkeypatch.setenv(a, GOOD)
    monkeypatch.setenv(b, GOOD)
    with pytest.raises(SettingsError, match=f"{a} must differ from {b}"):
        load_settings()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5"])
def test_loopback_workers_may_run_without_a_token(monkeypatch, host):
    monkeypatch.setenv("STOCKAPP_WEB_HOST", host)
    s = load_settings()
    assert s.web_loopback
    s.require_web_protection()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "worker-1.internal"])
def test_an_exposed_worker_needs_a_token_or_says_it_is_open(monkeypatch, host):
    monkeypatch.setenv("STOCKAPP_WEB_HOST", host)
    s = load_settings()
    assert not s.web_loopback
    with pytest.raises(SettingsError) as info:
        s.require_web_protection()
    message = str(info.value)
    assert f"STOCKAPP_WEB_HOST={host}" in message and "STOCKAPP_API_TOKEN" in message
    assert "STOCKAPP_ALLOW_OPEN=true" in message and "\n" not in message
    monkeypatch.setenv("STOCKAPP_ALLOW_OPEN", "true")
    load_settings().require_web_protection()
    monkeypatch.delenv("STOCKAPP_ALLOW_OPEN")
    monkeypatch.setenv("STOCKAPP_API_TOKEN", GOOD)
    load_settings().require_web_protection()


@pytest.mark.parametrize(
    ("env", "start"),
    [
        ({"STOCKAPP_WEB_HOST": "0.0.0.0"}, "STOCKAPP_WEB_HOST=0.0.0.0 is reachable"),
        ({"STOCKAPP_API_TOKEN": "  "}, "STOCKAPP_API_TOKEN=<hidden> is only whitespace"),
        ({"STOCKAPP_ADMIN_TOKEN": "0123456789"}, "STOCKAPP_ADMIN_TOKEN"),
    ],
)
def test_the_worker_command_stops_in_one_line_before_anything_else(monkeypatch, capsys, env, start):
    from stockapp.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Kafka is not asked (the check comes first): an unreachable one would say so instead.
    monkeypatch.setenv("STOCKAPP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"stockapp: error: {start}") and err.count("\n") == 1, err
