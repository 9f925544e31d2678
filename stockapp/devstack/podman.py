"""Podman as the project's own commands run it: with the repository's containers.conf.

Podman 4.3's defaults fail on these machines (limits above what root may set, crun and
cgroups in hybrid mode): ``stack/conf/containers.conf`` says what works, and every podman
command of the project (and podman-compose's, which inherit the environment) reads it through
``CONTAINERS_CONF``. Nothing under /etc is changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from stockapp.devstack.server import conf_dir
from stockapp.errors import StockappError

MISSING = (
    "podman is not installed: `make image` and `make test` install it (Debian: apt-get install "
    "podman buildah debootstrap runc)"
)


def env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (this process's environment) with CONTAINERS_CONF set to the project's file."""
    return {**(os.environ if base is None else base), "CONTAINERS_CONF": str(conf_path())}


def conf_path() -> str:
    return str(conf_dir() / "containers.conf")


def executable() -> str:
    found = shutil.which("podman")
    if found is None:
        raise StockappError(MISSING)
    return found


def podman(
    args: Sequence[str],
    timeout: float = 600,
    check: bool = True,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """``podman ARGS``, its output captured; with ``check``, a failure is one line."""
    result = subprocess.run(
        [executable(), *args],
        env=env(),
        capture_output=True,
        text=input_bytes is None,
        input=input_bytes,
        timeout=timeout,
    )
    if input_bytes is not None:  # binary in, text out
        result.stdout = result.stdout.decode(errors="replace")
        result.stderr = result.stderr.decode(errors="replace")
    if check and result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise StockappError(f"podman {' '.join(args[:2])} failed: {last[0]}")
    return result


def image_exists(name: str) -> bool:
    return podman(["image", "exists", name], check=False).returncode == 0


def image_size(name: str) -> int:
    """The image's size in bytes, as `podman images` counts it (every layer)."""
    return int(podman(["image", "inspect", "--format", "{{.Size}}", name]).stdout.strip())
