import sys
import time

from stockapp.devstack import processes


def test_spawn_read_and_stop(tmp_path):
    pid_file, log = tmp_path / "p.pid", tmp_path / "p.log"
    pid = processes.spawn(
        [sys.executable, "-c", "print('hi', flush=True); import time; time.sleep(60)"],
        pid_file,
        log,
    )
    assert processes.read_pid(pid_file) == pid
    deadline = time.monotonic() + 10
    while "hi" not in processes.tail(log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.stop(pid_file, grace=5) is True
    assert processes.read_pid(pid_file) is None
    assert not pid_file.exists()


def test_stale_pid_file_is_not_ours(tmp_path):
    pid_file = tmp_path / "p.pid"
    # Our own PID with a start time that is not ours: a reused PID must never be signalled.
    pid_file.write_text(f"{processes.os.getpid()} 1\n")
    assert processes.read_pid(pid_file) is None
    assert processes.stop(pid_file) is False


def test_exited_process_is_not_running(tmp_path):
    pid_file = tmp_path / "p.pid"
    processes.spawn([sys.executable, "-c", "pass"], pid_file, tmp_path / "log")
    deadline = time.monotonic() + 10
    while processes.read_pid(pid_file) is not None and time.monotonic() < deadline:
        processes._reap(int(pid_file.read_text().split()[0]))
        time.sleep(0.05)
    assert processes.read_pid(pid_file) is None
