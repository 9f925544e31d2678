"""Finding a Java 17 runtime: Cassandra 5.0 fails on Java 24+, and the machine may have both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from stockapp.errors import StockappError

SUPPORTED = range(17, 22)  # Cassandra 5.0 supports 11 and 17; Kafka 4.x brokers need 17+.


def java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def find_java(java_home: str = "") -> str:
    """Path of a ``java`` binary whose major version is in :data:`SUPPORTED`."""
    candidates: list[str] = []
    if java_home:
        candidates.append(str(Path(java_home) / "bin" / "java"))
    else:
        if os.environ.get("JAVA_HOME"):
            candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
        on_path = shutil.which("java")
        if on_path:
            candidates.append(on_path)
        candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*17*/bin/java"))
    for java in candidates:
        if java_major(java) in SUPPORTED:
            return java
    raise StockappError(
        "No Java 17 found for Kafka/Cassandra (tried: "
        + (", ".join(candidates) or "nothing")
        + "). Install openjdk-17-jre-headless or set STOCKAPP_STACK_JAVA_HOME."
    )
