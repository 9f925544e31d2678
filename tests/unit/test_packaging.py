"""setup.py without building anything: every folder of the package trees is a package of the
wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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
