from pathlib import Path

import pytest

from stockapp.devstack.settings import load_devstack_settings
from stockapp.settings import SettingsError, host_port, load_settings


def test_defaults_are_local(monkeypatch):
    for name in ("STOCKAPP_KAFKA_BOOTSTRAP", "STOCKAPP_CASSANDRA_PORT", "STOCKAPP_WEB_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.kafka_bootstrap == ("127.0.0.1:9092",)
    assert s.kafka_broker_url == "kafka://127.0.0.1:9092"
    assert s.cassandra_port == 9042
    assert s.web_host == "127.0.0.1" and s.web_port == 6066
    assert s.cassandra_keyspace == "stock_data"
    assert s.table_store == "auto"


def test_the_default_calendar_is_the_new_york_stock_exchange_s_regular_session(monkeypatch):
    """As a broker's chart of US stocks: candles of the regular session, hourly bars from the
    open (the tests' own default is ALWAYS_OPEN, tests/conftest.py)."""
    monkeypatch.delenv("STOCKAPP_EXCHANGE")
    s = load_settings()
    assert (s.exchange, s.session_hours, s.intraday_anchor) == ("XNYS", "regular", "auto")
    assert str(s.calendar.tz) == "America/New_York"


def test_auto_store_is_rocksdb_where_it_installs():
    from stockapp.app import table_store

    assert table_store("auto") == "keyrocksdb://"  # rocksdict is a dev dependency
    assert table_store("memory") == "memory://"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("STOCKAPP_KAFKA_BOOTSTRAP", "10.0.0.1:9092, 10.0.0.2:9093")
    monkeypatch.setenv("STOCKAPP_CASSANDRA_PORT", "19042")
    monkeypatch.setenv("STOCKAPP_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("STOCKAPP_TABLE_STORE", "rocksdb")
    s = load_settings()
    assert s.kafka_bootstrap == ("10.0.0.1:9092", "10.0.0.2:9093")
    assert s.kafka_broker_url == "kafka://10.0.0.1:9092;10.0.0.2:9093"
    assert s.cassandra_port == 19042
    assert load_devstack_settings().stack_dir == Path(tmp_path)
    assert s.table_store == "rocksdb"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STOCKAPP_CASSANDRA_PORT", "abc", "STOCKAPP_CASSANDRA_PORT='abc' is not an integer"),
        ("STOCKAPP_WEB_PORT", "70000", "STOCKAPP_WEB_PORT=70000 is outside 1..65535"),
        ("STOCKAPP_TABLE_STORE", "redis", "STOCKAPP_TABLE_STORE='redis' must be one of"),
        ("STOCKAPP_KAFKA_BOOTSTRAP", "host:port", "bad address 'host:port'"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings()


def test_password_is_not_in_repr(monkeypatch):
    monkeypatch.setenv("STOCKAPP_CASSANDRA_USERNAME", "stockapp")
    monkeypatch.setenv("STOCKAPP_CASSANDRA_PASSWORD", "s3cret")
    s = load_settings()
    assert s.cassandra_password == "s3cret"
    assert "s3cret" not in repr(s)


def test_host_port():
    assert host_port("127.0.0.1:9092", 1) == ("127.0.0.1", 9092)
    assert host_port("broker", 9092) == ("broker", 9092)


def test_faust_reads_no_environment_of_its_own(tmp_path):
    """Faust's own variables (WEB_PORT, BROKER_URL, APP_STORE...) would override stockapp's
    settings; the app is built so that only STOCKAPP_* configure it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WEB_PORT": "1234", "BROKER_URL": "kafka://elsewhere:1"}
    env.update(STOCKAPP_WEB_PORT="6071", STOCKAPP_DATA_DIR=str(tmp_path))
    probe = (
        "from stockapp.app import app; "
        "print(app.conf.web_port, app.conf.broker[0], app.conf.datadir)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["6071", "kafka://127.0.0.1:9092"]
    assert out[2].startswith(str(tmp_path / "worker-6071"))  # one state directory per worker


def test_worker_web_port_option_is_stockapps_web_port():
    from stockapp.cli import _web_port_option

    assert _web_port_option(["--web-port", "6067"]) == "6067"
    assert _web_port_option(["-l", "info", "-p", "6068"]) == "6068"
    assert _web_port_option(["--web-port=6069"]) == "6069"
    assert _web_port_option(["-l", "info"]) is None


def test_the_advertised_address(monkeypatch):
    """A worker binding 0.0.0.0 in a container must advertise an address its peers reach:
    0.0.0.0 would make every worker believe it owns every symbol."""
    import socket

    monkeypatch.setenv("STOCKAPP_WEB_HOST", "0.0.0.0")
    assert load_settings().web_advertised == "0.0.0.0"  # as before: nothing set
    monkeypatch.setenv("STOCKAPP_WEB_ADVERTISE", "worker-2.internal")
    assert load_settings().web_advertised == "worker-2.internal"
    monkeypatch.setenv("STOCKAPP_WEB_ADVERTISE", "auto")
    monkeypatch.setattr(socket, "gethostname", lambda: "c0ffee")
    monkeypatch.setattr(socket, "gethostbyname", {"c0ffee": "172.18.0.7"}.__getitem__)
    assert load_settings().web_advertised == "172.18.0.7"


def _without_path_settings(monkeypatch) -> None:
    for name in ("FRONTEND_DIST", "DATA_DIR", "RUN_DIR", "STACK_DIR"):
        monkeypatch.delenv(f"STOCKAPP_{name}", raising=False)


def test_in_a_checkout_the_defaults_are_the_repository_s(monkeypatch):
    from stockapp import settings as module
    from tests.helpers import REPO

    _without_path_settings(monkeypatch)
    assert module.CHECKOUT == REPO  # the tests run on the editable install
    s, stack = load_settings(), load_devstack_settings()
    assert s.frontend_dist == REPO / "frontend" / "dist"
    assert (s.data_dir, stack.run_dir, stack.stack_dir) == (
        REPO / ".data",
        REPO / ".run",
        REPO / ".stack",
    )


def test_an_installed_package_keeps_its_files_in_the_user_s_data_directory(monkeypatch, tmp_path):
    """Installed from a wheel, the package's parent is site-packages: nothing may go there."""
    from stockapp import settings as module

    _without_path_settings(monkeypatch)
    monkeypatch.setattr(module, "CHECKOUT", None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    s, stack = load_settings(), load_devstack_settings()
    base = tmp_path / "xdg" / "stockapp"
    assert (s.data_dir, stack.run_dir, stack.stack_dir) == (
        base / "data",
        base / "run",
        base / "stack",
    )
    assert s.frontend_dist == module.PACKAGE_DIR / "web" / "frontend"  # the wheel's copy
    # Without XDG_DATA_HOME (or with a relative one, which the specification ignores): ~/.local.
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().data_dir == tmp_path / "home" / ".local" / "share" / "stockapp" / "data"
    # The variables still win.
    monkeypatch.setenv("STOCKAPP_DATA_DIR", str(tmp_path / "state"))
    assert load_settings().data_dir == tmp_path / "state"


def test_the_local_stack_s_settings_are_the_devstack_s_alone(monkeypatch):
    """The program never reads STOCKAPP_STACK_* or STOCKAPP_RUN_DIR; the stack's tool reads
    them, with the program's settings, under the same variables as before."""
    from stockapp.devstack.settings import StackSettings
    from stockapp.settings import Settings

    assert not set(StackSettings.model_fields) & set(Settings.model_fields)
    assert not [name for name in Settings.model_fields if name.startswith("stack_")]
    monkeypatch.setenv("STOCKAPP_STACK_START_TIMEOUT", "240")
    monkeypatch.setenv("STOCKAPP_WEB_PORT", "6070")
    stack = load_devstack_settings()
    assert (stack.stack_start_timeout, stack.web_port) == (240, 6070)
    assert not hasattr(load_settings(), "stack_start_timeout")
    monkeypatch.setenv("STOCKAPP_STACK_START_TIMEOUT", "5")
    load_settings()  # not the program's: ignored
    with pytest.raises(SettingsError, match="STOCKAPP_STACK_START_TIMEOUT=5 must be at least 10"):
        load_devstack_settings()


def test_a_checkout_is_a_folder_whose_setup_cfg_names_stockapp(tmp_path):
    from stockapp.settings import _checkout

    assert _checkout(tmp_path) is None  # site-packages: no setup.cfg
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = other\n")
    assert _checkout(tmp_path) is None
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = stockapp\nversion = 1\n")
    assert _checkout(tmp_path) == tmp_path


def test_the_local_stack_outside_a_checkout_says_so_in_one_line(monkeypatch, capsys):
    """The stack's poms and configs are the repository's stack/, which no wheel carries."""
    from stockapp.devstack import checkout
    from stockapp.devstack.__main__ import main

    monkeypatch.setattr(checkout, "CHECKOUT", None)
    for command in (["status"], ["up"], ["fetch"], ["demo-up"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith("stack: error: the local stack runs from a stockapp checkout"), err
        assert "STOCKAPP_KAFKA_BOOTSTRAP" in err
