"""Fetching the server jars from Maven Central with the poms kept in ``stack/``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stockapp.devstack.checkout import stack_files
from stockapp.errors import StockappError


def pom(server: str) -> Path:
    """The pom whose dependencies are ``server``'s runtime classpath (kafka or cassandra)."""
    return stack_files() / server / "pom.xml"


def lib_dir(stack_dir: Path, server: str) -> Path:
    return stack_dir / server / "lib"


def fetch(stack_dir: Path, server: str) -> Path:
    """Copy the server's runtime classpath into the cache, once per pom version.

    The pom's content is stamped next to the jars so that bumping a version refetches.
    """
    pom_file = pom(server)
    target = lib_dir(stack_dir, server)
    stamp = target / ".pom"
    if stamp.exists() and stamp.read_text() == pom_file.read_text():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StockappError("Maven (mvn) is not installed; it fetches the Kafka/Cassandra jars.")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom_file),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        last = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise StockappError(f"Fetching {server} jars failed: " + " | ".join(last))
    stamp.write_text(pom_file.read_text())
    return target
