"""stockapp as users install it, not as the other tests run it (the editable install).

`python -m build` makes the sdist and, from it, the wheel (which builds the front end with npm,
as any wheel built from the sdist does). Each is installed, not editable, into a fresh venv in a
temporary folder, every command running there, outside the repository; then: the wheel holds
every module and the built front end, every module of both installs imports, `stockapp --help`
answers without servers, the local stack says in one line that it needs a checkout, a build
without Node.js stops in one line, the installed page and its script are served and the path
defaults point outside site-packages; and, on the test stack, the wheel's `stockapp db migrate`,
`stockapp check` and a worker started from its venv: `/ready`, the chart at `/` with its script,
the API, and the stored 1m candles of a small stream equal to the oracle's, with nothing
written into site-packages and the worker's state in the user's data directory.

Dependencies come from PyPI through pip's cache; a first run on a machine downloads them.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import orjson
import pytest

from stockapp.sinks.cassandra_session import connect
from tests.helpers import REPO
from tests.integration.workers import Worker, produce, wait_for, with_indicators, worker_env
from tests.oracle import (
    DEFAULT_INDICATORS,
    assert_candle_row,
    assert_close_or_null,
    expected_candles,
)
from tests.streams import generate_ticks

TZ = "America/New_York"
SYMBOLS = ["IA", "IB"]
START_MS = 1_767_621_600_000  # 2026-01-05 14:00 UTC
# The package trees of the repository and where the wheel puts them.
TREES = {"stockapp": "stockapp", "agents": "stockapp/agents", "tables": "stockapp/tables"}
MIGRATIONS = sorted(p.name for p in (REPO / "stockapp" / "db" / "migrations").glob("*.cql"))
# Environment variables that would make an installed interpreter see the checkout.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def _source_modules() -> set[str]:
    """Every module of the repository's package trees, by its installed name."""
    names = set()
    for folder, installed in TREES.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = [*installed.split("/"), *path.relative_to(REPO / folder).with_suffix("").parts]
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """This process's environment without anything that points Python at the checkout; the
    user's data directory in the temporary folder."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    return {**env, "XDG_DATA_HOME": str(tmp / "xdg"), **extra}


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    assert REPO not in tmp.resolve().parents, "the install test must run outside the repository"
    return tmp


@pytest.fixture(scope="module")
def built(place) -> dict[str, Path]:
    """The sdist and the wheel built from it, as `python -m build` makes them."""
    if _run([sys.executable, "-m", "build", "--version"], place, _env(place)).returncode:
        pytest.fail("`python -m build` is not installed: make install (the dev extra has it)")
    out = place / "dist"
    _ok(
        _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], place, _env(place)),
        "python -m build",
    )
    (sdist,) = out.glob("stockapp-*.tar.gz")
    (wheel,) = out.glob("stockapp-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def _venv(place: Path, name: str, target: Path) -> Path:
    """A fresh venv with ``target`` (a wheel or an sdist) and its dependencies installed."""
    venv = place / f"venv-{name}"
    env = _env(place)
    _ok(_run([sys.executable, "-m", "venv", str(venv)], place, env), "python -m venv")
    _ok(
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(target)], place, env),
        f"pip install {target.name}",
    )
    return venv


@pytest.fixture(scope="module")
def wheel_venv(place, built) -> Path:
    return _venv(place, "wheel", built["wheel"])


@pytest.fixture(scope="module")
def sdist_venv(place, built) -> Path:
    # pip builds a wheel from the sdist (npm included) and installs it.
    return _venv(place, "sdist", built["sdist"])


def _site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3*/site-packages")
    return found


def _installed_files(venv: Path) -> set[str]:
    """The package's files in site-packages (bytecode caches left out)."""
    root = _site_packages(venv)
    return {
        str(p.relative_to(root))
        for p in (root / "stockapp").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_wheel_holds_every_module_and_the_built_front_end(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for folder, installed in TREES.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                inside = f"{installed}/{path.relative_to(REPO / folder).as_posix()}"
                assert inside in names, f"{inside} is missing from the wheel"
    for name in MIGRATIONS:
        assert f"stockapp/db/migrations/{name}" in names
    assert "stockapp/web/openapi.json" in names
    assert "stockapp/web/frontend/index.html" in names
    assert any(re.fullmatch(r"stockapp/web/frontend/assets/.+\.js", n) for n in names), names
    # Nothing top-level but stockapp (``tables`` would shadow PyTables; no tests, no bench).
    assert {n.split("/")[0] for n in names} == {
        "stockapp",
        built["wheel"].name.split("-py3")[0] + ".dist-info",
    }
    top_level = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    with zipfile.ZipFile(built["wheel"]) as wheel:
        assert wheel.read(top_level[0]).decode().split() == ["stockapp"]


def test_the_sdist_holds_the_front_end_s_sources_and_no_build_output(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for needed in (
        "setup.py",
        "setup.cfg",
        "pyproject.toml",
        "MANIFEST.in",
        "frontend/package.json",
        "frontend/package-lock.json",
        "frontend/index.html",
        "frontend/vite.config.ts",
        "frontend/src/main.tsx",
        "tables/signals/spec.py",
    ):
        assert needed in names, f"{needed} is missing from the sdist"
    assert not [n for n in names if "node_modules" in n or n.startswith("frontend/dist")]


def test_a_wheel_built_without_node_stops_in_one_line(built, place):
    """The sdist holds the front end's sources only: without Node.js and npm its wheel cannot
    be built, and the build says why in one line (not a traceback), exiting non-zero."""
    src = place / "no-node"
    src.mkdir()
    with tarfile.open(built["sdist"]) as sdist:
        sdist.extractall(src, filter="data")
    (unpacked,) = src.iterdir()
    empty = place / "empty-bin"  # PATH: no node, no npm (python is named by its path)
    empty.mkdir()
    result = _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(src / "out"), str(unpacked)],
        place,
        _env(place, PATH=str(empty)),
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("stockapp: building")]
    assert lines == [
        "stockapp: building the wheel needs Node.js 20+ and npm (to build frontend/); node and "
        "npm not found on PATH: install them, or build from a checkout where `make install` has "
        "built frontend/dist"
    ], output[-3000:]
    assert "Traceback" not in output
    assert not list((src / "out").glob("*.whl"))


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_every_module_imports_and_help_answers_without_servers(kind, place, request):
    venv = request.getfixturevalue(f"{kind}_venv")
    python = str(venv / "bin" / "python")
    script = (
        "import importlib, json, pkgutil, stockapp\n"
        "names = ['stockapp'] + [m.name for m in pkgutil.walk_packages(stockapp.__path__, "
        "'stockapp.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'file': stockapp.__file__, 'modules': names}))\n"
    )
    before = _installed_files(venv)
    printed = _ok(_run([python, "-c", script], place, _env(place)), "the imports")
    found = json.loads(printed.strip().splitlines()[-1])
    assert Path(found["file"]).is_relative_to(_site_packages(venv)), found["file"]
    assert set(found["modules"]) == _source_modules()
    shown = _ok(_run([str(venv / "bin" / "stockapp"), "--help"], place, _env(place)), "--help")
    for command in ("worker", "db", "produce", "backfill", "check"):
        assert command in shown
    assert _installed_files(venv) == before, "importing stockapp wrote into site-packages"


def test_the_sdist_installs_what_the_wheel_installs(wheel_venv, sdist_venv):
    """pip's wheel of the sdist and `python -m build`'s are the same package (front end
    included), so the worker below, run from the wheel, speaks for both."""
    assert _installed_files(sdist_venv) == _installed_files(wheel_venv)


def test_the_local_stack_of_an_installed_package_says_it_needs_a_checkout(wheel_venv, place):
    result = _run(
        [str(wheel_venv / "bin" / "python"), "-m", "stockapp.devstack", "status"],
        place,
        _env(place),
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("stack: error: the local stack runs from a stockapp checkout")


# Run by the installed interpreter: the page and its script as a worker's web server serves
# them (stockapp.web.static on a bare aiohttp app, no servers needed), and the path defaults.
SERVE_PAGE = """
import asyncio, json, re, types
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from stockapp.devstack.settings import load_devstack_settings
from stockapp.settings import load_settings
from stockapp.web import static

async def main():
    settings = load_settings()
    stack = load_devstack_settings()
    app = web.Application()
    static.mount(types.SimpleNamespace(web_app=app), settings)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/")
        html = await page.read()
        script = re.search(rb'src="(/assets/[^"]+[.]js)"', html).group(1).decode()
        code = await client.get(script)
        print(json.dumps({
            "page": [page.status, page.content_type, html.decode()],
            "script": [script, code.status, code.content_type, len(await code.read())],
            "paths": {
                **{k: str(getattr(settings, k)) for k in ("frontend_dist", "data_dir")},
                **{k: str(getattr(stack, k)) for k in ("run_dir", "stack_dir")},
            },
        }))

asyncio.run(main())
"""


def test_an_installed_package_serves_its_own_front_end_and_keeps_its_files_outside(
    wheel_venv, place
):
    printed = _run([str(wheel_venv / "bin" / "python"), "-c", SERVE_PAGE], place, _env(place))
    found = json.loads(_ok(printed, "serving the page").strip().splitlines()[-1])
    packaged = _site_packages(wheel_venv) / "stockapp" / "web" / "frontend"
    assert found["paths"] == {
        "frontend_dist": str(packaged),
        "data_dir": str(place / "xdg" / "stockapp" / "data"),
        "run_dir": str(place / "xdg" / "stockapp" / "run"),
        "stack_dir": str(place / "xdg" / "stockapp" / "stack"),
    }
    status, kind, html = found["page"]
    assert (status, kind) == (200, "text/html")
    assert html == (packaged / "index.html").read_text()
    script, status, kind, size = found["script"]
    assert status == 200 and "javascript" in kind
    assert size == (packaged / script.lstrip("/")).stat().st_size > 0


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def _stored_1m(session, keyspace: str) -> dict:
    rows = {}
    for row in session.execute(f"SELECT * FROM {keyspace}.candles", timeout=60):
        if row.interval == "1m":
            start = calendar.timegm(row.start.timetuple()) * 1000 + row.start.microsecond // 1000
            rows[(row.symbol, start)] = row
    return rows


def test_an_installed_worker_serves_the_chart_the_api_and_the_oracle_s_candles(
    stack, wheel_venv, place, unique, monkeypatch
):
    # The worker inherits this environment: nothing in it may point at the checkout, nor move
    # the state directory this test expects in the user's data directory.
    for name in (*LEAKS, "STOCKAPP_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    bin_dir = wheel_venv / "bin"
    keyspace = f"stockapp_install_{unique}"
    env = worker_env(
        "install",
        unique,
        keyspace,
        place / "data",  # dropped below: the installed default is the point
        STOCKAPP_IDLE_CLOSE_SECONDS="3",  # the stream's last candles close once it stops
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_MARKET_TIMEZONE=TZ,
        STOCKAPP_LOG_LEVEL="INFO",
        STOCKAPP_INDICATORS=DEFAULT_INDICATORS,  # the oracle's
        XDG_DATA_HOME=str(place / "xdg"),
    )
    del env["STOCKAPP_DATA_DIR"]  # the installed default: the user's data directory
    port = int(env["STOCKAPP_WEB_PORT"])
    site_before = _installed_files(wheel_venv)
    full_env = {**_env(place), **env}
    ticks = generate_ticks(
        900, SYMBOLS, seed=21, start_ms=START_MS, mean_gap_ms=3000, jitter_ms=2000
    )
    records = [
        (
            t.symbol.encode(),
            orjson.dumps({"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}),
        )
        for t in ticks
    ]
    expected = {}
    for _, row in expected_candles(ticks, "1m", TZ).iterrows():
        expected[(row["symbol"], int(row["start"]))] = row

    worker = Worker(
        env, place / f"worker-{unique}.log", [str(bin_dir / "stockapp"), "worker"], place
    )
    cluster, session = connect(stack, keyspace=None)
    try:
        # The schema from the package's migrations, and both servers seen from the venv.
        migrate = [str(bin_dir / "stockapp"), "db", "migrate"]
        migrated = _ok(_run(migrate, place, full_env), "stockapp db migrate")
        applied = [line.split()[1] for line in migrated.splitlines() if line.startswith("applied")]
        assert applied == MIGRATIONS, migrated
        checked = _ok(_run([str(bin_dir / "stockapp"), "check"], place, full_env), "check")
        assert "kafka: " in checked and "cassandra: " in checked, checked

        asyncio.run(produce(stack.kafka_bootstrap[0], env["STOCKAPP_TOPIC_QUOTES"], records))
        worker.start()
        wait_for(lambda: worker.stats().get("quotes", 0) >= len(ticks), 300, "the stream", worker)
        wait_for(
            lambda: set(expected) <= set(_stored_1m(session, keyspace)),
            120,
            "every 1m candle stored",
            worker,
            missing=lambda: sorted(set(expected) - set(_stored_1m(session, keyspace)))[:10],
        )
        wait_for(lambda: _get(port, "/ready")[0] == 200, 120, "/ready", worker)

        # The chart: the packaged index.html at /, and the script it loads.
        packaged = _site_packages(wheel_venv) / "stockapp" / "web" / "frontend"
        status, page, kind = _get(port, "/")
        assert status == 200 and kind.startswith("text/html"), (status, kind, page[:200])
        assert page == (packaged / "index.html").read_bytes()
        script = re.search(rb'src="(/assets/[^"]+\.js)"', page)
        assert script, page
        status, code, kind = _get(port, script.group(1).decode())
        assert status == 200 and "javascript" in kind, (status, kind)
        assert code == (packaged / script.group(1).decode().lstrip("/")).read_bytes()

        # The API, and its description from the package's openapi.json.
        status, body, _ = _get(port, "/api/openapi.json")
        assert status == 200 and json.loads(body)["openapi"].startswith("3."), body[:200]
        status, body, _ = _get(port, "/api/candles/IA?interval=1m&limit=5000")
        assert status == 200, body[:200]
        closed = [c for c in json.loads(body)["candles"] if c["closed"]]
        assert [c["t"] * 1000 for c in closed] == sorted(s for sym, s in expected if sym == "IA")

        time.sleep(2)  # anything still in flight would show up as an extra or changed row
        stored = _stored_1m(session, keyspace)
        assert set(stored) == set(expected)
        for key, row in expected.items():
            assert_candle_row(stored[key], row, key)
            for name in with_indicators(stack, DEFAULT_INDICATORS).indicator_outputs:
                assert_close_or_null(getattr(stored[key], name), row[name], (key, name))
    finally:
        worker.stop()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
    # Its state went to the user's data directory; nothing into site-packages.
    assert (place / "xdg" / "stockapp" / "data" / f"worker-{port}").is_dir()
    assert _installed_files(wheel_venv) == site_before
