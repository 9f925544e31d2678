"""make test's lanes (the Makefile's LANE_* pytest selections): together they collect every test
of the suite exactly once, each is run by make test, and the last lane holds exactly the tests
that need Chromium or podman, which are installed only for it.

The selections are pytest's own (``--collect-only`` of each lane's arguments, as the Makefile
passes them), so a test outside tests/unit and tests/integration, or a marker expression that
selects a test twice or never, fails here: in the first lane, minutes before the stack starts.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.helpers import REPO

MAKEFILE = (REPO / "Makefile").read_text()


def lanes() -> dict[str, tuple[str, ...]]:
    """Each lane's pytest arguments, by name (FAST, STACK, LAST), in the Makefile's order."""
    found = re.findall(r"^LANE_(\w+) := (.+)$", MAKEFILE, re.MULTILINE)
    return {name: tuple(shlex.split(args)) for name, args in found}


# pytest run again and again in one process, which imports the test modules once: the whole
# suite and the three lanes take about as long to collect as the suite alone.
COLLECT = """
import json, sys
import pytest

class Selected:
    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]

found = []
for args in json.loads(sys.argv[2]):
    selected = Selected()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *args], [selected])
    found.append({"code": int(code), "ids": selected.ids})
with open(sys.argv[1], "w") as out:
    json.dump(found, out)
"""


@functools.cache
def collect_all() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The node ids pytest selects for the whole suite (testpaths) and for each lane."""
    named = lanes()
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "collected.json"
        out = subprocess.run(
            [sys.executable, "-c", COLLECT, str(result), json.dumps([[], *named.values()])],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0 and result.exists(), out.stdout[-3000:] + out.stderr[-3000:]
        every, *each = json.loads(result.read_text())
    for name, got in zip(["the suite", *named], [every, *each], strict=True):
        assert got["code"] == 0, f"collecting {name}: pytest exit {got['code']}\n{out.stdout}"
    return tuple(every["ids"]), {n: tuple(got["ids"]) for n, got in zip(named, each, strict=True)}


def test_the_makefile_has_three_lanes_and_make_test_runs_each():
    named = lanes()
    assert list(named) == ["FAST", "STACK", "LAST"]
    for name in named:
        assert f"$(LANE_{name})" in MAKEFILE, f"no recipe runs LANE_{name}"


def test_the_lanes_together_collect_every_test_exactly_once():
    every, each = collect_all()
    assert every and len(set(every)) == len(every)
    for name, ids in each.items():
        assert ids, f"lane {name} selects no test"
    seen = Counter(node for ids in each.values() for node in ids)
    twice = sorted(node for node, count in seen.items() if count > 1)
    assert not twice, f"in more than one lane: {twice}"
    assert not set(every) - set(seen), f"in no lane: {sorted(set(every) - set(seen))}"
    assert not set(seen) - set(every), f"not in the suite: {sorted(set(seen) - set(every))}"


def needs_chromium_or_podman() -> set[str]:
    """The tests (node ids without parameters) that run a frontend/e2e script in Chromium, and
    every test of a module that runs podman or uses the image built with it."""
    found = set()
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        podman = any(
            isinstance(node, ast.ImportFrom)
            and (
                node.module == "tests.integration.containers"
                or (node.module == "stockapp.devstack" and {"podman", "images"} & names(node))
            )
            for node in ast.walk(tree)
        )
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.name.startswith("test"):
                continue
            image = any(arg.arg == "stockapp_image" for arg in node.args.args)
            if podman or image or ".e2e.mjs" in (ast.get_source_segment(source, node) or ""):
                found.add(f"{path.relative_to(REPO).as_posix()}::{node.name}")
    return found


def names(node: ast.ImportFrom) -> set[str]:
    return {alias.name for alias in node.names}


def test_the_last_lane_holds_exactly_the_tests_that_need_chromium_or_podman():
    """Marked ``browser`` or ``containers`` (pyproject.toml) if and only if they need them."""
    _, each = collect_all()
    last = {node.split("[")[0] for node in each["LAST"]}
    needs = needs_chromium_or_podman()
    assert needs, "no test found that runs Chromium or podman: has this check gone stale?"
    assert not needs - last, f"need Chromium or podman, so mark them: {sorted(needs - last)}"
    assert not last - needs, f"in the last lane without needing it: {sorted(last - needs)}"
