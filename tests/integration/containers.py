"""The stockapp image run by podman in tests: containers on the host's network against the
local stack, each removed afterwards.

The host's network because the local Kafka advertises 127.0.0.1:9092, which a container reaches
only there (docs/operations.md, "The image"). The workers are bound to 127.0.0.1, as everything
the tests start: the image's 0.0.0.0 would expose them on the machine's other addresses.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from stockapp.devstack import podman
from stockapp.devstack.images import IMAGE
from stockapp.devstack.worker import WorkerProcess


def run_args(
    name: str,
    env: dict[str, str],
    data: str | None = None,
    command: tuple[str, ...] = (),
) -> list[str]:
    """`podman run` of the image as the tests run it: host network, a read-only root with no
    writable tmpfs either (so whatever the worker writes goes to /data, or fails), /data from
    ``data`` (a volume name or a host path; else the image's anonymous volume)."""
    args = ["run", "--detach", "--name", name, "--network", "host"]
    args += ["--read-only", "--read-only-tmpfs=false"]
    if data is not None:
        args += ["--volume", f"{data}:/data"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    return [*args, IMAGE, *command]


def container_env(env: dict[str, str]) -> dict[str, str]:
    """A test worker's settings (tests.integration.workers.worker_env) for a container: its
    state under the image's /data, loopback only."""
    return {
        **{k: v for k, v in env.items() if k != "STOCKAPP_DATA_DIR"},
        "STOCKAPP_WEB_HOST": "127.0.0.1",
        "STOCKAPP_WEB_ADVERTISE": "127.0.0.1",
    }


def inspect(name: str, template: str) -> str:
    return podman.podman(["inspect", "--format", template, name]).stdout.strip()


def remove(*names: str) -> None:
    """Containers gone with their anonymous volumes; the missing ones ignored."""
    if names:
        podman.podman(["rm", "--force", "--volumes", "--time", "5", *names], check=False)


def finished(name: str, timeout: float = 120) -> tuple[int, list[str]]:
    """The exit status of a container that stops by itself, and every line it printed."""
    podman.podman(["wait", name], timeout=timeout)
    code = int(inspect(name, "{{.State.ExitCode}}"))
    logs = podman.podman(["logs", name])
    return code, (logs.stdout + logs.stderr).splitlines()


class _Logs:
    """What tests.integration.workers.wait_for reads of a worker's log: podman's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def read_text(self) -> str:
        logs = podman.podman(["logs", self.name], check=False)
        return logs.stdout + logs.stderr


class _Exited:
    """A container's exit as wait_for asks a process for it (``poll()``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def poll(self) -> int | None:
        state = podman.podman(["inspect", "--format", "{{.State.Status}}", self.name], check=False)
        if state.stdout.strip() in ("exited", "stopped"):
            return int(inspect(self.name, "{{.State.ExitCode}}"))
        return None


class ContainerWorker(WorkerProcess):
    """A `stockapp worker` container: started, read (/stats on its port), stopped like the
    worker processes of the other tests."""

    def __init__(self, name: str, env: dict[str, str], data: str) -> None:
        super().__init__(env, Path("/dev/null"))
        self.name = name
        self.data = data
        self.log = _Logs(name)  # type: ignore[assignment]
        self.proc = None

    def start(self) -> None:
        if self.proc is None:
            podman.podman(run_args(self.name, self.env, self.data))
            self.proc = _Exited(self.name)  # type: ignore[assignment]
        else:  # the same container again: its /data volume, its settings
            podman.podman(["start", self.name])

    def stop_timed(self, grace: int) -> tuple[float, int]:
        """`podman stop` (SIGTERM, SIGKILL after ``grace`` seconds): how long it took, and the
        exit status (137 if it had to be killed)."""
        started = time.monotonic()
        podman.podman(["stop", "--time", str(grace), self.name], timeout=grace + 60)
        return time.monotonic() - started, int(inspect(self.name, "{{.State.ExitCode}}"))

    def stop(self, sig: int = 15) -> None:
        remove(self.name)


def healthcheck(name: str) -> subprocess.CompletedProcess[str]:
    return podman.podman(["healthcheck", "run", name], check=False)
