"""What setup.cfg cannot say: which packages there are.

Packages are discovered, not listed: every folder of ``stockapp/`` and, installed under
``stockapp``, of ``agents/`` and ``tables/`` (never as top-level packages: ``tables`` is PyTables'
import name). A subpackage added later is in the wheel without anyone adding it here
(tests/unit/test_packaging.py).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
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


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import discover()
    PACKAGES, PACKAGE_DIR = discover()
    setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
