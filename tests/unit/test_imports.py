"""The import graph: no circles (also none hidden inside functions or behind a package's
``__init__``), the candle/indicator domain at the bottom, and no shadowing of other
distributions' top-level names."""

from __future__ import annotations

import subprocess
import sys

import grimp

from tests.helpers import REPO

DOMAIN = "stockapp.tables"
# The one module of tables/ that is Faust wiring, not domain: it declares the table on the app.
DOMAIN_WIRING = {"stockapp.tables.definitions"}


def _graph() -> dict[str, set[str]]:
    """Module -> modules it imports, where importing ``a.b.c`` also imports ``a.b`` and ``a``
    (their ``__init__`` runs first, and a circle through it is as real as any)."""
    graph = grimp.build_graph("stockapp", include_external_packages=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        targets = set()
        for imported in graph.find_modules_directly_imported_by(module):
            parts = imported.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        # A package's own ancestors and the module itself are not edges of interest.
        edges[module] = {t for t in targets if t != module and not module.startswith(t + ".")}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_domain_imports_nothing_of_the_app():
    edges = _graph()
    wrong = {
        (module, target)
        for module, targets in edges.items()
        if module.startswith(DOMAIN + ".") and module not in DOMAIN_WIRING
        for target in targets
        if target != "stockapp" and not (target == DOMAIN or target.startswith(DOMAIN + "."))
    }
    assert wrong == set()


def test_tables_is_not_stockapps_top_level_package(tmp_path):
    """``tables`` is PyTables' name (pandas imports it for HDF5): in stockapp's environment it
    must not resolve to this project (run outside the repo, as a user's script would)."""
    probe = (
        "import importlib.util as u\n"
        "for name in ('tables', 'agents'):\n"
        "    spec = u.find_spec(name)\n"
        "    print(name, spec.origin if spec else None)\n"
        "import stockapp.tables.candle, stockapp.agents\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines()[:2]:
        name, origin = line.split(" ", 1)
        assert origin == "None" or not origin.startswith(str(REPO)), line
    assert out.splitlines()[-1] == "ok"


def test_the_web_layer_reads_the_processor_through_its_view_only():
    """stockapp/web reads ``app.view`` (a ProcessorView: a snapshot and forming candles),
    never the processor itself, so the processor's parts can change without it."""
    import pathlib

    web = pathlib.Path(__file__).resolve().parents[2] / "stockapp" / "web"
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(web.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "app.processor" in line or "proc.stats" in line or "proc.checkpoint" in line
    ]
    assert offenders == []
