"""A `stockapp worker` child process with its own settings and log, as tests and benchmarks
run them: start, read its /stats, stop by signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nothing listens on now (for a worker's web server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.env = env  # STOCKAPP_* settings on top of this process's environment
        self.log = log
        # The worker of this interpreter's venv, unless another is given (an installed one).
        self.command = command or [str(BIN / "stockapp"), "worker"]
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
            )

    def stats(self, full: bool = False) -> dict:
        """The worker's /stats (``full``) or its counters; {} while it does not answer."""
        url = f"http://127.0.0.1:{self.env['STOCKAPP_WEB_PORT']}/stats"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = json.loads(response.read())
        except OSError:
            return {}
        return body if full else body["counters"]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the worker and wait for it (SIGKILL after 60 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
