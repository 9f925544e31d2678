"""A sampling profile of a running worker (py-spy, from the `bench` extra), summarised.

`python -m bench --profile` records the first stockapp worker for its whole run; the summary
(where the samples were, by own time and by time including callees) goes into the results and
docs/performance.md quotes it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

LINE = re.compile(r":\d+\)$")
# Frames worth naming when counted with their callees: ours and the libraries on the hot path.
OURS = ("stockapp/", "faust/", "aiokafka/", "cassandra/", "orjson", "mode/")


def start(pid: int, out: Path, rate: int = 50) -> subprocess.Popen | None:
    """Starts py-spy on ``pid``; None (with a note) when py-spy is not installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed (pip install -e '.[bench]'): no profile", flush=True)
        return None
    return subprocess.Popen(
        [spy, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(spy: subprocess.Popen | None) -> None:
    if spy is None:
        return
    spy.send_signal(2)  # py-spy writes its output on SIGINT
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def summary(raw: Path, top: int = 15) -> str:
    """Markdown: the frames with the most samples of their own, and our frames including
    their callees, as shares of the main thread's samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.startswith("<module>"):  # other threads start at Thread._bootstrap
            continue
        n = int(count)
        # One entry per function, whatever line of it the sample was on.
        frames = [LINE.sub(")", frame) for frame in stack.split(";")]
        total += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            if any(mark in frame for mark in OURS):
                inclusive[frame] += n
    if not total:
        return "No samples of the main thread.\n"
    lines = [f"{total:,} samples of the main thread.", "", "| own time | frame |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{frame}` |" for frame, n in own.most_common(top)]
    lines += ["", "| with callees | frame |", "|---|---|"]
    skip = ("cli.py", "faust/cli/", "faust/app/base.py", "mode/worker.py")
    shown = [(f, n) for f, n in inclusive.most_common() if not any(s in f for s in skip)]
    lines += [f"| {n / total:.1%} | `{frame}` |" for frame, n in shown[:top]]
    return "\n".join(lines) + "\n"
