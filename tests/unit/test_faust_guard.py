"""`stockapp worker` runs only on the faust-streaming and aiokafka versions that
stockapp/faust_compat.py was checked against (setup.cfg pins the same ones), unless
STOCKAPP_ALLOW_UNTESTED_FAUST says otherwise, and then it warns at every start."""

from __future__ import annotations

import asyncio
import configparser
import logging
import re
import sys
import warnings
from collections.abc import Iterator

import pytest

import stockapp
from stockapp import faust_compat
from stockapp.errors import StockappError
from stockapp.faust_compat import ALLOW_UNTESTED_VARIABLE, TESTED_VERSIONS, check_versions
from stockapp.settings import ENV_PREFIX, Settings
from tests.helpers import REPO

# Upgrades change the tested versions; the messages are built from them.
FAUST, AIOKAFKA = TESTED_VERSIONS["faust-streaming"], TESTED_VERSIONS["aiokafka"]


def pins() -> dict[str, str]:
    """The ``name==version`` requirements of setup.cfg's install_requires."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    found = {}
    for line in config["options"]["install_requires"].splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)\s*", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_the_tested_versions_are_the_ones_setup_cfg_pins():
    pinned = pins()
    assert {name: pinned.get(name) for name in TESTED_VERSIONS} == dict(TESTED_VERSIONS)


def test_the_installed_versions_are_the_tested_ones():
    assert faust_compat.untested_versions() == {}


def test_the_override_is_a_setting_and_documented():
    assert ENV_PREFIX + "ALLOW_UNTESTED_FAUST" == ALLOW_UNTESTED_VARIABLE
    assert Settings.model_fields["allow_untested_faust"].default is False
    assert f"`{ALLOW_UNTESTED_VARIABLE}`" in (REPO / "docs" / "configuration.md").read_text()


def fake_installed(monkeypatch, **versions: str | None) -> None:
    """Pretend these distributions (``faust_streaming=...``) are installed at these versions."""
    wanted = {name.replace("_", "-"): version for name, version in versions.items()}
    monkeypatch.setattr(
        faust_compat,
        "installed_version",
        lambda name: wanted[name] if name in wanted else TESTED_VERSIONS[name],
    )


def test_one_untested_version_is_refused_in_one_line(monkeypatch):
    fake_installed(monkeypatch, faust_streaming="99.0.0")
    with pytest.raises(StockappError) as raised:
        check_versions(allow_untested=False)
    assert str(raised.value) == (
        f"faust-streaming 99.0.0 (tested: {FAUST}) is not a version stockapp was checked "
        "against; set STOCKAPP_ALLOW_UNTESTED_FAUST=1 to run anyway"
    )


def test_every_untested_version_is_named(monkeypatch):
    fake_installed(monkeypatch, faust_streaming="99.1.0", aiokafka=None)
    with pytest.raises(StockappError) as raised:
        check_versions(allow_untested=False)
    message = str(raised.value)
    assert message.startswith(
        f"faust-streaming 99.1.0 (tested: {FAUST}) and aiokafka (not installed) "
        f"(tested: {AIOKAFKA}) are not versions stockapp was checked against"
    )
    assert "\n" not in message


def test_the_override_returns_the_warning_instead(monkeypatch):
    fake_installed(monkeypatch, aiokafka="99.2.0")
    warning = check_versions(allow_untested=True)
    assert warning is not None and "\n" not in warning
    assert warning.startswith(f"aiokafka 99.2.0 (tested: {AIOKAFKA}) is not a version")
    assert f"running anyway because {ALLOW_UNTESTED_VARIABLE} is set" in warning


def test_the_tested_versions_pass_without_a_word():
    assert check_versions(allow_untested=False) is None
    assert check_versions(allow_untested=True) is None


@pytest.fixture
def worker_env(monkeypatch, tmp_path) -> Iterator[list[str]]:
    """`stockapp worker` with every server and Faust itself stood in for: the list says which
    were reached, in order. Nothing is written into the checkout."""
    from types import SimpleNamespace

    from stockapp import connectivity, state_budget, topics
    from stockapp.app import app
    from stockapp.db import migrate
    from stockapp.sinks import cassandra_session

    for name in ("STOCKAPP_WEB_HOST", "STOCKAPP_API_TOKEN", ALLOW_UNTESTED_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STOCKAPP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STOCKAPP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    reached: list[str] = []
    cluster = SimpleNamespace(shutdown=lambda: None)
    monkeypatch.setattr(connectivity, "check_kafka", lambda s: reached.append("kafka"))
    monkeypatch.setattr(
        cassandra_session,
        "connect",
        lambda s, keyspace: reached.append("cassandra") or (cluster, None),
    )
    monkeypatch.setattr(migrate, "require_current", lambda *a: None)
    monkeypatch.setattr(topics, "ensure_topics", lambda s: reached.append("topics"))
    monkeypatch.setattr(state_budget, "check", lambda s: s.kafka_producer_batch_bytes)
    monkeypatch.setattr(app, "task", lambda fun: reached.append(f"task {fun.__name__}") or fun)
    monkeypatch.setattr(app, "main", lambda: reached.append("faust"))
    batch_size = app.conf.producer_max_batch_size
    yield reached
    # cli.py sets it on the shared app: put back (Faust warns of a value set after it was
    # read, which a worker process never does: the producer reads it once, after).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app.conf.producer_max_batch_size = batch_size


def test_the_worker_stops_on_an_untested_version_before_asking_any_server(
    monkeypatch, capsys, worker_env
):
    from stockapp.cli import main

    fake_installed(monkeypatch, faust_streaming="99.0.0")
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"stockapp: error: faust-streaming 99.0.0 (tested: {FAUST}) is not a version stockapp "
        "was checked against; set STOCKAPP_ALLOW_UNTESTED_FAUST=1 to run anyway\n"
    )
    assert worker_env == []


def test_the_worker_runs_with_the_override_and_warns_once_started(monkeypatch, caplog, worker_env):
    from stockapp.app import app
    from stockapp.cli import main

    tasks = []
    monkeypatch.setattr(app, "task", lambda fun: tasks.append(fun) or fun)
    fake_installed(monkeypatch, faust_streaming="99.0.0")
    monkeypatch.setenv(ALLOW_UNTESTED_VARIABLE, "1")
    assert main(["worker"]) == 0
    assert worker_env == ["kafka", "cassandra", "topics", "faust"]
    # Faust's worker sets up logging when it starts, then runs the app's tasks.
    (warn,) = tasks
    with caplog.at_level(logging.WARNING, logger=faust_compat.__name__):
        asyncio.run(warn())
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert record.getMessage().startswith(f"faust-streaming 99.0.0 (tested: {FAUST})")


def test_the_worker_on_the_tested_versions_registers_no_warning(worker_env):
    from stockapp.cli import main

    assert main(["worker"]) == 0
    assert worker_env == ["kafka", "cassandra", "topics", "faust"]


def test_a_faust_that_breaks_faust_compat_s_imports_is_one_line_too(
    monkeypatch, capsys, worker_env
):
    """A release that removed a name faust_compat imports fails before the version check
    can run; it says which versions are installed instead of a traceback."""
    from stockapp.cli import main

    monkeypatch.delattr(stockapp, "faust_compat")
    monkeypatch.setitem(sys.modules, "stockapp.faust_compat", None)
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "stockapp: error: stockapp/faust_compat.py does not work with the installed "
        f"faust-streaming {FAUST} and aiokafka {AIOKAFKA} (ModuleNotFoundError: "
    )
    assert err.endswith(
        f"install the versions stockapp requires (faust-streaming=={FAUST}, aiokafka=={AIOKAFKA})\n"
    )
    assert err.count("\n") == 1
    assert worker_env == []
