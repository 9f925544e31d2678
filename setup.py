"""What setup.cfg cannot say: which packages there are, and the built front end in the wheel.

* Packages are discovered, not listed: every folder of ``stockapp/`` and, installed under
  ``stockapp``, of ``agents/`` and ``tables/`` (never as top-level packages: ``tables`` is
  PyTables' import name). A subpackage added later is in the wheel without anyone adding it
  here (tests/unit/test_packaging.py).
* A wheel carries the built front end as ``stockapp/web/frontend/``, which an installed worker
  serves at ``/`` (stockapp/settings.py). It is copied from ``frontend/dist`` when that is newer
  than every source of it (a checkout after ``make install``); otherwise ``npm ci && npm run
  build`` makes it (a wheel built from the sdist, which holds the sources only). Without Node.js
  and npm the build stops with one line. Editable installs skip all this: they serve the
  checkout's ``frontend/dist``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FRONTEND = HERE / "frontend"
# Where the built front end goes inside the package (stockapp/settings.py serves it from
# there when stockapp does not run from a checkout).
PACKAGED_FRONTEND = ("stockapp", "web", "frontend")
# The oldest Node.js the locked packages accept (playwright-core's engines field; vite 6 takes
# 18, 20 or 22+); README.md asks for the same.
MIN_NODE = (20, 0)
# The files `npm run build` reads; the same list as the Makefile's rule for frontend/dist.
FRONTEND_INPUTS = (
    "src",
    "index.html",
    "vite.config.ts",
    "tsconfig.json",
    "package.json",
    "package-lock.json",
)
# Folders of the source tree that are never packages (bytecode caches).
NOT_PACKAGES = ["__pycache__", "*.__pycache__"]
# Each package tree and its folder: agents/ and tables/ sit at the top of the repository (the
# product's layout) and are installed under stockapp.
TREES = {"stockapp": "stockapp", "stockapp.agents": "agents", "stockapp.tables": "tables"}


def discover(root: Path = HERE) -> tuple[list[str], dict[str, str]]:
    """Every package of the distribution, and where the mapped ones live.

    Namespace discovery: a folder without ``__init__.py`` (data such as
    ``stockapp/db/migrations``, or a subpackage someone forgot to give one) is shipped too.
    Each tree is searched on its own, never the whole repository (frontend/node_modules).
    """
    packages: list[str] = []
    for name, folder in TREES.items():
        found = find_namespace_packages(where=str(root / folder), exclude=NOT_PACKAGES)
        packages += [name, *(f"{name}.{sub}" for sub in found)]
    package_dir = {name: folder for name, folder in TREES.items() if name != folder}
    return sorted(packages), package_dir


def fail(message: str) -> SystemExit:
    """The build's one line (printed by Python on the way out, exit status 1)."""
    return SystemExit(f"stockapp: {message}")


def frontend_is_built(frontend: Path) -> bool:
    """``dist/index.html`` exists and no input of the build is newer (a checkout's dist is kept
    current by `make install`; a stale one is rebuilt rather than shipped)."""
    index = frontend / "dist" / "index.html"
    if not index.is_file():
        return False
    built = index.stat().st_mtime
    for name in FRONTEND_INPUTS:
        path = frontend / name
        files = path.rglob("*") if path.is_dir() else [path]
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return False
    return True


def node_version(node: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    found = re.match(r"v?(\d+)\.(\d+)", out.stdout.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def require_node() -> str:
    """npm's path, once Node.js and npm are there and new enough; else the build's one line."""
    need = f"building the wheel needs Node.js {MIN_NODE[0]}+ and npm (to build frontend/)"
    how = "install them, or build from a checkout where `make install` has built frontend/dist"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise fail(f"{need}; {missing} not found on PATH: {how}")
    version = node_version(node)
    if version is None or version < MIN_NODE:
        shown = f"v{version[0]}.{version[1]}" if version else "an unreadable version"
        raise fail(f"{need}; {node} is {shown}: {how}")
    return npm


def build_frontend(frontend: Path) -> Path:
    """``frontend/dist``, built now unless it is current. Returns it."""
    if frontend_is_built(frontend):
        return frontend / "dist"
    if not (frontend / "package.json").is_file():
        raise fail(
            f"building the wheel needs the front end's sources in {frontend} (the repository "
            "and the sdist have them), or its built dist/"
        )
    npm = require_node()
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        print(f"stockapp: npm {' '.join(step)} (in {frontend})", flush=True)
        if subprocess.run([npm, *step], cwd=frontend).returncode != 0:
            raise fail(f"`npm {' '.join(step)}` failed in {frontend} (its output is above)")
    if not (frontend / "dist" / "index.html").is_file():
        raise fail(f"`npm run build` made no {frontend}/dist/index.html")
    return frontend / "dist"


class BuildWithFrontend(build_py):
    """build_py, plus the built front end copied into the package being built."""

    def run(self) -> None:
        super().run()
        self.frontend_files: list[str] = []
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the checkout's frontend/dist
        dist = build_frontend(FRONTEND)
        target = Path(self.build_lib, *PACKAGED_FRONTEND)
        # A previous build's bundles (their names carry a hash) must not linger in the wheel.
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(dist, target)
        self.frontend_files = [str(p) for p in sorted(target.rglob("*")) if p.is_file()]

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *getattr(self, "frontend_files", [])]


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import discover()
    PACKAGES, PACKAGE_DIR = discover()
    setup(
        packages=PACKAGES,
        package_dir=PACKAGE_DIR,
        cmdclass={"build_py": BuildWithFrontend},
    )
