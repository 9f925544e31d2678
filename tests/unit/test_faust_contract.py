"""The upstream code stockapp/faust_compat.py patches or reads is the code it was written
against.

Each name faust_compat declares with ``@relies_on`` (its ``PATCHED`` tuple) is recorded in
tests/fixtures/faust_contract.json: a method's signature and the sha256 of its source, an
instance attribute's lines of use in the upstream modules. A test per name recomputes them from
the installed faust-streaming and aiokafka and fails, naming it, when they changed. Two more
keep the list complete: what faust_compat overrides in an upstream class, and every private
name it reads, must be declared.

After a deliberate upgrade (docs/operations.md, "Upgrading Faust or aiokafka"): bump the pins
in setup.cfg and ``TESTED_VERSIONS``, reinstall, run ``python -m tests.faust_contract`` to list
what changed, re-read each named method against faust_compat's use of it, then record the new
versions with ``python -m tests.faust_contract --write`` and commit the fixture.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest

from stockapp import faust_compat
from stockapp.faust_compat import PATCHED, TESTED_VERSIONS
from tests import faust_contract
from tests.faust_contract import describe, differences, is_upstream, load, uses

SOURCE = Path(faust_compat.__file__)
REWRITE = (
    "re-read its use in stockapp/faust_compat.py, then: python -m tests.faust_contract --write"
)


@pytest.fixture(scope="module")
def recorded() -> dict:
    return load()


def test_the_fixture_holds_exactly_the_declared_names(recorded):
    undeclared = sorted(set(recorded["names"]) - set(PATCHED))
    unrecorded = sorted(set(PATCHED) - set(recorded["names"]))
    assert (undeclared, unrecorded) == ([], []), f"the declarations changed: {REWRITE}"


def test_the_fixture_was_recorded_with_the_tested_versions(recorded):
    versions = {name: recorded["recorded_with"].get(name) for name in TESTED_VERSIONS}
    assert versions == dict(TESTED_VERSIONS), f"TESTED_VERSIONS changed: {REWRITE}"


@pytest.mark.parametrize("name", sorted(PATCHED))
def test_upstream_is_as_recorded(recorded, name):
    changed = differences(recorded, name, describe(name))
    assert not changed, "; ".join(changed) + f": {REWRITE}"


def test_a_changed_source_is_named(recorded):
    """The comparison the tests above rely on, on a fixture with one digest altered."""
    name = "faust.transport.drivers.aiokafka.Consumer._getmany"
    tampered = copy.deepcopy(recorded)
    tampered["names"][name]["sha256"] = "0" * 64
    assert differences(tampered, name, describe(name)) == [f"{name}: its source changed"]
    tampered["names"][name]["signature"] = "(self)"
    assert f"{name}: signature now" in differences(tampered, name, describe(name))[0]


def _tree() -> ast.Module:
    return ast.parse(SOURCE.read_text(), filename=str(SOURCE))


def _nearest_upstream(cls: type) -> type | None:
    return next((k for k in cls.__mro__[1:] if is_upstream(k.__module__)), None)


def _patch_classes() -> list[tuple[ast.ClassDef, type]]:
    """faust_compat's classes with an upstream base, with that base."""
    found = []
    for node in _tree().body:
        if isinstance(node, ast.ClassDef):
            base = _nearest_upstream(getattr(faust_compat, node.name))
            if base is not None:
                found.append((node, base))
    return found


def _body_names(node: ast.ClassDef) -> set[str]:
    """Names a class body defines: methods and class attributes."""
    names = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    return names


def _self_assigned(node: ast.ClassDef) -> set[str]:
    """Attributes the class's methods set on ``self``."""
    return {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute)
        and isinstance(n.ctx, ast.Store)
        and isinstance(n.value, ast.Name)
        and n.value.id == "self"
    }


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_every_override_of_an_upstream_class_is_declared():
    """A method faust_compat's subclass defines that its upstream base also has replaces
    upstream code: it must be declared, so that its upstream version is recorded."""
    overrides = {
        f"{base.__module__}.{base.__qualname__}.{name}"
        for node, base in _patch_classes()
        for name in _body_names(node)
        if hasattr(base, name)
    }
    assert sorted(overrides - set(PATCHED)) == []


def test_every_private_name_faust_compat_reads_is_declared_or_its_own():
    """``x._name`` in faust_compat is upstream's private ``_name`` unless faust_compat defines
    it itself, on one of its own classes, under a name upstream does not use there."""
    declared = {name.rsplit(".", 1)[1] for name in PATCHED}
    own: dict[str, type] = {}
    for node, base in _patch_classes():
        for name in _body_names(node) | _self_assigned(node):
            own[name] = base
    used: dict[str, list[int]] = {}
    for n in ast.walk(_tree()):
        if isinstance(n, ast.Attribute) and _private(n.attr):
            used.setdefault(n.attr, []).append(n.lineno)
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(n.args) >= 2
            and isinstance(n.args[1], ast.Constant)
            and isinstance(n.args[1].value, str)
            and _private(n.args[1].value)
        ):
            used.setdefault(n.args[1].value, []).append(n.lineno)
    undeclared = []
    for name, lines in sorted(used.items()):
        if name in declared:
            continue
        base = own.get(name)
        if base is not None and not hasattr(base, name) and not uses(base, name):
            continue
        undeclared.append(f"{name} (line {', '.join(map(str, lines))})")
    assert undeclared == [], "declare them with @relies_on beside their use"


def test_the_own_names_check_sees_upstream_ones():
    """The check above tells an upstream attribute from one of faust_compat's own by its uses
    in the upstream source: _read_offset is upstream's, _fetches is not."""
    consumer = faust_compat.RebalanceSafeConsumer.__mro__[1]
    assert uses(consumer, "_read_offset")
    assert not uses(consumer, "_fetches")


def test_every_declared_name_is_used():
    """A declaration nothing uses any more would keep its upstream code under watch for
    nothing. Code that faust_compat does again in its own way (the conductor's delivery, the
    schema's decoding) is used by being cited as ``Class.method`` where it is done."""
    mentioned = set()
    for n in ast.walk(_tree()):
        if isinstance(n, ast.Attribute):
            mentioned.add(n.attr)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            mentioned.add(n.name)
    cited = set(re.findall(r"``(\w+\.\w+)``", SOURCE.read_text()))
    unused = [
        n
        for n in PATCHED
        if n.rsplit(".", 1)[1] not in mentioned and ".".join(n.rsplit(".", 2)[1:]) not in cited
    ]
    assert unused == []


def test_the_command_line_reports_no_difference(capsys):
    assert faust_contract.main([]) == 0, capsys.readouterr().out
