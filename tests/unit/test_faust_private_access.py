"""Only stockapp/faust_compat.py touches Faust's and aiokafka's private names.

That module is what the version guard, the contract fixture and an upgrade's re-reading cover
(tests/unit/test_faust_contract.py); a private name used anywhere else would escape all three.
Every module of the packages (stockapp/, and agents/ and tables/, installed as stockapp.agents
and stockapp.tables) is parsed, and ``x._name`` (one leading underscore) is flagged when ``x``
is, as far as the source shows, a Faust or aiokafka object:

* a name imported from faust, aiokafka or mode (``faust.App._x``, ``View._x``), or anything
  reached from one;
* a name or attribute that holds one in this code base (``app``, ``self.app``, ``consumer``,
  ``table``, ``event``, ``tp``, ...: :data:`RECEIVERS`), or anything reached from one
  (``app.consumer.assignment()._x``);
* ``self``, ``cls`` or ``super()`` in a class derived from an upstream class (directly, through
  stockapp's own classes, or through one of faust_compat's), for a name the class and its
  stockapp ancestors do not define themselves, or one they define that upstream already has
  (an override of a private name);

and so is the same through ``getattr(x, "_name")`` and friends, and a private name imported
from those packages. A name flagged here belongs in faust_compat, as a small function with
the same behaviour, declared with ``@relies_on``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import REPO

TREES = {"stockapp": "stockapp", "stockapp.agents": "agents", "stockapp.tables": "tables"}
COMPAT_MODULE = "stockapp.faust_compat"
UPSTREAM = ("faust", "aiokafka", "mode")
# Names and attributes that hold Faust or aiokafka objects in this code base.
RECEIVERS = frozenset(
    {
        "app",
        "consumer",
        "producer",
        "transport",
        "table",
        "tables",
        "store",
        "stream",
        "streams",
        "event",
        "events",
        "message",
        "record",
        "records",
        "tp",
        "tps",
        "topic",
        "topics",
        "channel",
        "agent",
        "agents",
        "flow_control",
        "conf",
        "fetcher",
        "coordinator",
        "subscription",
        "assignment",
        "client",
        "kafka",
        "thread",
        "web",
        "request",
        "response",
        "monitor",
        "changelog",
    }
)
# NamedTuple's public methods are spelt with one underscore, and TP and aiokafka's
# TopicPartition are NamedTuples.
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_field_defaults", "_make"})
# (path from the repository, attribute) -> why that access may stay outside faust_compat.
ALLOWED: dict[tuple[str, str], str] = {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API


def _upstream(dotted: str) -> bool:
    return dotted.split(".")[0] in UPSTREAM


@dataclass
class ClassInfo:
    bases: list[str]  # dotted, as far as the module's imports tell
    members: set[str] = field(default_factory=set)  # methods, class and self. attributes


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, str]  # local name -> dotted name


def module_name(path: Path) -> str:
    for package, folder in TREES.items():
        root = REPO / folder
        if path.is_relative_to(root):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def _imports(tree: ast.Module, name: str, is_package: bool) -> dict[str, str]:
    found = {}
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    found[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found[alias.asname or alias.name] = f"{base}.{alias.name}"
    return found


def parse(path: Path, source: str | None = None, name: str | None = None) -> Module:
    name = name or module_name(path)
    text = path.read_text() if source is None else source
    tree = ast.parse(text, filename=str(path))
    return Module(name, path, tree, _imports(tree, name, path.name == "__init__.py"))


def modules() -> list[Module]:
    """Every module of the packages but faust_compat."""
    found = []
    for folder in TREES.values():
        for path in sorted((REPO / folder).rglob("*.py")):
            if module_name(path) != COMPAT_MODULE:
                found.append(parse(path))
    return found


def dotted(node: ast.expr, module: Module) -> str | None:
    """``a.b.C`` as the module's imports resolve it, for a base class expression."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = module.imports.get(node.id, f"{module.name}.{node.id}")
    return ".".join([root, *reversed(parts)])


def _definitions(node: ast.ClassDef) -> list[tuple[ast.AST, str]]:
    """What a class defines, where: methods, class attributes, attributes set on ``self``."""
    found: list[tuple[ast.AST, str]] = []
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append((item, item.name))
        elif isinstance(item, ast.Assign):
            found += [(item, t.id) for t in item.targets if isinstance(t, ast.Name)]
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            found.append((item, item.target.id))
    for n in ast.walk(node):
        if (
            isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
        ):
            found.append((n, n.attr))
    return found


def class_index(mods: list[Module]) -> dict[str, ClassInfo]:
    index = {}
    for module in mods:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                info = ClassInfo([b for b in (dotted(e, module) for e in node.bases) if b])
                info.members.update(name for _, name in _definitions(node))
                index[f"{module.name}.{node.name}"] = info
    return index


def upstream_bases(name: str, index: dict[str, ClassInfo]) -> list[str]:
    """The nearest upstream (or faust_compat) classes a class derives from."""
    if _upstream(name) or name.startswith(COMPAT_MODULE + "."):
        return [name]
    info = index.get(name)
    if info is None:
        return []
    return [u for base in info.bases for u in upstream_bases(base, index)]


def own_members(name: str, index: dict[str, ClassInfo]) -> set[str]:
    """What a class and its stockapp ancestors (not faust_compat's) define."""
    info = index.get(name)
    if info is None:
        return set()
    return info.members.union(*(own_members(base, index) for base in info.bases))


def load_class(name: str) -> type | None:
    module_path, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module_path), attr)
    except (ImportError, AttributeError):
        return None


def upstream_has(base: str, name: str) -> bool:
    """Whether an upstream (or faust_compat) class has ``name``, as a class attribute or as
    an instance attribute its source mentions."""
    cls = load_class(base)
    if cls is None:
        return True  # unresolvable: assume the worst
    if hasattr(cls, name):
        return True
    pattern = re.compile(rf"\.{re.escape(name)}\b")
    for module in dict.fromkeys(k.__module__ for k in cls.__mro__):
        if _upstream(module) or module == COMPAT_MODULE:
            if pattern.search(inspect.getsource(sys.modules[module])):
                return True
    return False


class Finder(ast.NodeVisitor):
    def __init__(self, module: Module, index: dict[str, ClassInfo]) -> None:
        self.module = module
        self.index = index
        self.classes: list[str] = []
        self.found: list[tuple[int, str, str]] = []  # line, attribute, why

    def flag(self, node: ast.AST, attr: str, why: str) -> None:
        self.found.append((node.lineno, attr, why))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(f"{self.module.name}.{node.name}")
        self.check_overrides(node)
        self.generic_visit(node)
        self.classes.pop()

    def check_overrides(self, node: ast.ClassDef) -> None:
        """A private name an upstream-derived class defines that upstream has too replaces
        upstream's: a patch, whether or not anything here reads it."""
        bases = upstream_bases(self.classes[-1], self.index)
        if not bases:
            return
        seen = set()
        for item, name in _definitions(node):
            if name in seen or not _private(name):
                continue
            seen.add(name)
            clash = [base for base in bases if upstream_has(base, name)]
            if clash:
                self.flag(item, name, f"overrides {', '.join(clash)}'s")

    def upstream_object(self, node: ast.expr) -> bool:
        """Whether the expression is, or is reached from, a Faust/aiokafka object."""
        while True:
            if isinstance(node, ast.Name):
                imported = self.module.imports.get(node.id)
                return node.id.lstrip("_") in RECEIVERS or bool(imported and _upstream(imported))
            if isinstance(node, ast.Attribute):
                if node.attr.lstrip("_") in RECEIVERS:
                    return True
                node = node.value
            elif isinstance(node, ast.Call):
                node = node.func
            elif isinstance(node, ast.Subscript):
                node = node.value
            else:
                return False

    def inherited_private(self, receiver: ast.expr, attr: str) -> str | None:
        """Why ``self._attr`` (or cls., super().) is an upstream private name, or None."""
        is_self = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
        is_super = (
            isinstance(receiver, ast.Call)
            and isinstance(receiver.func, ast.Name)
            and receiver.func.id == "super"
        )
        if not self.classes or not (is_self or is_super):
            return None
        bases = upstream_bases(self.classes[-1], self.index)
        if not bases:
            return None
        if is_super or attr not in own_members(self.classes[-1], self.index):
            return f"inherited from {', '.join(bases)}"
        return None  # its own (check_overrides flags a definition upstream has too)

    def check(self, node: ast.AST, receiver: ast.expr, attr: str) -> None:
        if not _private(attr):
            return
        why = self.inherited_private(receiver, attr)
        if why is None and self.upstream_object(receiver):
            why = "on a Faust/aiokafka object"
        if why is not None:
            self.flag(node, attr, why)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check(node, node.value, node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            self.check(node, node.args[0], node.args[1].value)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level and _upstream(node.module):
            for part in node.module.split("."):
                if _private(part):
                    self.flag(node, part, f"a private module of {node.module}")
            for alias in node.names:
                if _private(alias.name):
                    self.flag(node, alias.name, f"imported from {node.module}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if _upstream(alias.name):
                for part in alias.name.split("."):
                    if _private(part):
                        self.flag(node, part, f"a private module of {alias.name}")


def offences(module: Module, index: dict[str, ClassInfo]) -> list[tuple[int, str, str]]:
    finder = Finder(module, index)
    finder.visit(module.tree)
    return finder.found


def test_no_module_but_faust_compat_touches_a_private_upstream_name():
    mods = modules()
    index = class_index(mods)
    found = []
    for module in mods:
        where = module.path.relative_to(REPO).as_posix()
        for line, attr, why in offences(module, index):
            if (where, attr) not in ALLOWED:
                found.append(f"{where}:{line}: {attr} ({why})")
    assert not found, "move these into stockapp/faust_compat.py, declared with @relies_on:\n" + (
        "\n".join(found)
    )


def test_every_allowed_access_still_exists_and_says_why():
    mods = modules()
    index = class_index(mods)
    present = {
        (module.path.relative_to(REPO).as_posix(), attr)
        for module in mods
        for _, attr, _ in offences(module, index)
    }
    assert all(reason.strip() for reason in ALLOWED.values())
    assert sorted(set(ALLOWED) - present) == []


def test_the_tree_is_scanned():
    names = {module.name for module in modules()}
    assert {"stockapp.app", "stockapp.agents.quotes", "stockapp.tables.definitions"} <= names
    assert COMPAT_MODULE not in names


def check_snippet(source: str, extra: str = "") -> list[str]:
    """The private names flagged in ``source``, as a module of stockapp.web (with ``extra``
    as another module, stockapp.web.base, it may import from)."""
    mods = [parse(REPO / "stockapp" / "web" / "snippet.py", source, "stockapp.web.snippet")]
    if extra:
        mods.append(parse(REPO / "stockapp" / "web" / "base.py", extra, "stockapp.web.base"))
    return [attr for _, attr, _ in offences(mods[0], class_index(mods))]


VIEW_BASE = """
from faust.web import View

class Base(View):
    def _helper(self):
        return 1
"""


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("from stockapp.app import app\napp.consumer._committed_offset", ["_committed_offset"]),
        ("def f(self):\n    return self.app._monitor", ["_monitor"]),
        ("def f(self):\n    return self._app._x", ["_x"]),
        ("import faust\nfaust.App._new_transport", ["_new_transport"]),
        ("import faust as f\nf.App._new_transport", ["_new_transport"]),
        ("from aiokafka import AIOKafkaConsumer as C\nC._fetcher", ["_fetcher"]),
        ("def f(app):\n    return app.consumer.assignment()._x", ["_x"]),
        ("def f(consumer):\n    return getattr(consumer, '_thread')", ["_thread"]),
        ("def f(event):\n    return event._x", ["_x"]),
        ("def f(tables):\n    return tables['t']._data", ["_data"]),
        ("def f(tp):\n    return tp._x, tp._replace(partition=1)", ["_x"]),
        ("from faust.transport.consumer import _ensure_x", ["_ensure_x"]),
        ("import faust._cython.windows", ["_cython"]),
        (
            "from faust.web import View\nclass V(View):\n    def get(self):\n"
            "        return self._view_private",
            ["_view_private"],
        ),
        (
            # defined here, but upstream has it too: overrides, read or not
            "from faust.stores.rocksdb import Store\nclass S(Store):\n"
            "    def _set(self, key, value):\n        return None",
            ["_set"],
        ),
        (
            "from faust.stores.rocksdb import Store\nclass S(Store):\n"
            "    def __init__(self):\n        self._key_index = {}",
            ["_key_index"],
        ),
        (
            "from stockapp.faust_compat import DurableTable\nclass T(DurableTable):\n"
            "    def f(self):\n        return self._unsent",
            ["_unsent"],
        ),
        (
            "from stockapp.faust_compat import RebalanceSafeConsumer as C\nclass D(C):\n"
            "    async def _own(self):\n        return await super()._getmany(None, 1)",
            ["_getmany"],
        ),
        (
            "from stockapp.web.base import Base\nclass V(Base):\n    def g(self):\n"
            "        return self._helper(), self._view_private",
            ["_view_private"],
        ),
    ],
)
def test_the_check_flags_upstream_private_names(source, flagged):
    assert check_snippet(source, VIEW_BASE) == flagged


@pytest.mark.parametrize(
    "source",
    [
        "def f(state, kept):\n    state._settle(kept)",
        "class Mine:\n    def __init__(self):\n        self._n = 0\n"
        "    def f(self):\n        return self._n, self.__class__",
        "from faust.web import View\nclass V(View):\n    def __init__(self):\n"
        "        self._seen = 0\n    def _own(self):\n        return self._seen",
        "from stockapp.web.base import Base\nclass V(Base):\n    def g(self):\n"
        "        return self._helper()",
        "def f(app):\n    return app.conf.web_port, app.consumer.assignment()",
    ],
)
def test_the_check_leaves_stockapps_own_private_names(source):
    assert check_snippet(source, VIEW_BASE) == []
