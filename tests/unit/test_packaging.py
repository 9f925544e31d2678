"""setup.py without building anything: every folder of the package trees is a package of the
wheel, and the front-end step of the build reuses a current build, rebuilds a stale one, and
stops in one line without Node.js (tests/integration/test_install.py builds the real thing)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import REPO


def _setup_py() -> ModuleType:
    # Loaded under another name than __main__, so setup() is not run.
    spec = importlib.util.spec_from_file_location("stockapp_setup", REPO / "setup.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = _setup_py()
TREES = {"stockapp": "stockapp", "agents": "stockapp.agents", "tables": "stockapp.tables"}


def _folders(root: Path) -> dict[str, Path]:
    """Every folder of the three trees that holds a file, by the package name it installs as."""
    found = {}
    for folder, name in TREES.items():
        for path in [root / folder, *(p for p in (root / folder).rglob("*") if p.is_dir())]:
            if "__pycache__" in path.parts or not any(f.is_file() for f in path.iterdir()):
                continue
            rel = path.relative_to(root / folder).parts
            found[".".join((name, *rel))] = path
    return found


def test_every_folder_of_the_package_trees_is_in_the_wheel():
    """The hand-written list missed stockapp.tables.signals: discovery must find every folder
    (modules or data), under stockapp, and nothing top-level but stockapp."""
    packages, package_dir = SETUP.discover()
    assert set(packages) == set(_folders(REPO)), "setup.py discover() and the folders differ"
    assert "stockapp.tables.signals" in packages and "stockapp.db.migrations" in packages
    assert {p.split(".")[0] for p in packages} == {"stockapp"}
    assert package_dir == {"stockapp.agents": "agents", "stockapp.tables": "tables"}


def test_a_new_subpackage_is_found_without_anyone_listing_it(tmp_path):
    for folder in TREES:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "tables" / "patterns").mkdir()
    (tmp_path / "tables" / "patterns" / "__init__.py").write_text("")
    # Forgetting __init__.py does not leave it out either (a namespace package).
    (tmp_path / "stockapp" / "extras" / "deep").mkdir(parents=True)
    (tmp_path / "stockapp" / "extras" / "deep" / "thing.py").write_text("")
    (tmp_path / "agents" / "__pycache__").mkdir()
    packages, _ = SETUP.discover(tmp_path)
    assert set(packages) == {
        "stockapp",
        "stockapp.extras",
        "stockapp.extras.deep",
        "stockapp.agents",
        "stockapp.tables",
        "stockapp.tables.patterns",
    }


# A fake npm (run by this interpreter: the tests' PATH has nothing else): logs its arguments,
# and `npm run build` writes dist/index.html; with FAIL_NPM set it fails instead.
FAKE_NPM = """#!{python}
import os, pathlib, sys
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if os.environ.get("FAIL_NPM"):
    sys.exit(3)
if sys.argv[1:2] == ["run"]:
    pathlib.Path("dist").mkdir(exist_ok=True)
    pathlib.Path("dist", "index.html").write_text("built")
"""


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """A PATH holding nothing but what the test puts into it: (bin dir, npm's log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir, tmp_path / "npm.log"


def _install(bin_dir: Path, log: Path, node_version: str = "v20.20.2") -> None:
    scripts = {
        "node": f"#!/bin/sh\necho {node_version}\n",
        "npm": FAKE_NPM.format(python=sys.executable, log=str(log)),
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def _frontend(tmp_path: Path) -> Path:
    frontend = tmp_path / "frontend"
    (frontend / "src").mkdir(parents=True)
    (frontend / "src" / "main.tsx").write_text("// the app")
    (frontend / "package.json").write_text("{}")
    return frontend


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value.code)
    assert "\n" not in message, message
    assert message.startswith("stockapp: "), message
    return message


def test_without_node_the_build_stops_in_one_line(tmp_path, tools):
    with pytest.raises(SystemExit) as exc:
        SETUP.build_frontend(_frontend(tmp_path))
    message = _one_line(exc)
    assert message.startswith(
        "stockapp: building the wheel needs Node.js 20+ and npm (to build frontend/); "
        "node and npm not found on PATH"
    ), message


def test_an_old_node_stops_the_build_in_one_line(tmp_path, tools):
    bin_dir, log = tools
    _install(bin_dir, log, node_version="v18.19.1")
    with pytest.raises(SystemExit) as exc:
        SETUP.build_frontend(_frontend(tmp_path))
    assert "is v18.19: install them" in _one_line(exc)
    assert not log.exists()


def test_without_sources_or_a_build_the_build_stops_in_one_line(tmp_path, tools):
    with pytest.raises(SystemExit) as exc:
        SETUP.build_frontend(tmp_path / "frontend")
    assert "needs the front end's sources" in _one_line(exc)


def test_a_failing_npm_stops_the_build_in_one_line(tmp_path, tools, monkeypatch):
    bin_dir, log = tools
    _install(bin_dir, log)
    monkeypatch.setenv("FAIL_NPM", "1")
    with pytest.raises(SystemExit) as exc:
        SETUP.build_frontend(_frontend(tmp_path))
    assert "`npm ci --no-audit --no-fund` failed" in _one_line(exc)


def test_a_current_build_is_reused_and_a_stale_one_rebuilt(tmp_path, tools):
    bin_dir, log = tools
    _install(bin_dir, log)
    frontend = _frontend(tmp_path)
    assert SETUP.build_frontend(frontend) == frontend / "dist"
    assert log.read_text().splitlines() == ["ci --no-audit --no-fund", "run build"]

    log.unlink()
    assert SETUP.build_frontend(frontend) == frontend / "dist"
    assert not log.exists(), "a current dist/ was built again"

    later = time.time() + 5  # a source edited after the build
    os.utime(frontend / "src" / "main.tsx", (later, later))
    SETUP.build_frontend(frontend)
    assert log.read_text().splitlines() == ["ci --no-audit --no-fund", "run build"]
