"""Background processes tracked by PID files.

A PID alone is not proof of ownership (PIDs are reused), so the file also records the process's
start time from /proc; a PID whose start time differs belongs to someone else and is left alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may contain spaces, so split after ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return fields[19]


def read_pid(pid_file: Path) -> int | None:
    """The PID recorded in ``pid_file`` if that very process is still running."""
    try:
        pid_text, started = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == started else None


def spawn(
    argv: list[str],
    pid_file: Path,
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in its own session, output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal must not reach the servers
            env=env,
            cwd=cwd,
        )
    started = _start_time(proc.pid)
    pid_file.write_text(f"{proc.pid} {started}\n")
    return proc.pid


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid_file: Path, grace: float = 60.0) -> bool:
    """SIGTERM the recorded process, SIGKILL after ``grace`` seconds. True if one was stopped."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    started = _start_time(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _start_time(pid) == started and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if _start_time(pid) == started:
        os.kill(pid, signal.SIGKILL)
        while _start_time(pid) == started:
            _reap(pid)
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
