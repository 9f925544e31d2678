"""What stockapp/faust_compat.py relies on in Faust and aiokafka, as the installed versions
have it: for each name of ``faust_compat.PATCHED``, its signature and a digest of its source.

    python -m tests.faust_contract           # compare with the recorded fixture
    python -m tests.faust_contract --write   # record the installed versions' (after an upgrade)

tests/unit/test_faust_contract.py compares the fixture with the installed packages; its
docstring says when to re-record.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import re
import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from stockapp.faust_compat import PATCHED, TESTED_VERSIONS

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "faust_contract.json"
UPSTREAM_PACKAGES = ("faust", "aiokafka", "mode")
# mode is Faust's service library: its classes are in the MRO of everything patched.
RECORDED_DISTRIBUTIONS = (*TESTED_VERSIONS, "mode-streaming")


def is_upstream(module_name: str) -> bool:
    return module_name.split(".")[0] in UPSTREAM_PACKAGES


def resolve(dotted: str) -> tuple[type, str]:
    """``module.Class.attribute`` -> (the class, the attribute's name)."""
    parts = dotted.split(".")
    for split in range(len(parts) - 2, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:-1]:
            owner = getattr(owner, part)
        if not inspect.isclass(owner):
            raise TypeError(f"{dotted}: {'.'.join(parts[:-1])} is not a class")
        return owner, parts[-1]
    raise ImportError(f"{dotted}: no module of it imports")


def uses(owner: type, name: str) -> list[str]:
    """Every line mentioning ``.name`` in the upstream modules that define ``owner`` and its
    bases, stripped, each after its module's name: what an instance attribute is, as far as
    the source tells (line numbers left out, so edits elsewhere do not count)."""
    pattern = re.compile(rf"\.{re.escape(name)}\b")
    modules = dict.fromkeys(k.__module__ for k in owner.__mro__ if is_upstream(k.__module__))
    found = []
    for module_name in modules:
        source = inspect.getsource(sys.modules[module_name])
        found += [
            f"{module_name}: {line.strip()}" for line in source.splitlines() if pattern.search(line)
        ]
    return found


def _function(raw: Any) -> Any:
    """The function behind a class attribute found statically (a method, a property's
    getter, a class or static method), or None for data."""
    if isinstance(raw, property):
        return raw.fget
    if isinstance(raw, classmethod | staticmethod):
        return raw.__func__
    if isinstance(raw, cached_property):
        return raw.func
    return raw if inspect.isfunction(raw) else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def describe(dotted: str) -> dict[str, Any]:
    """How the installed packages define ``dotted``: a method's signature, the class that
    defines it and its source's digest; an instance attribute's uses."""
    owner, name = resolve(dotted)
    defined_in = next((k for k in owner.__mro__ if name in vars(k)), None)
    function = _function(vars(defined_in)[name]) if defined_in is not None else None
    if function is None:
        lines = uses(owner, name)
        if not lines and defined_in is None:
            raise LookupError(f"{dotted}: no longer defined or used upstream")
        return {
            "kind": "attribute",
            "defined_in": None if defined_in is None else _qualified(defined_in),
            "signature": None,
            "uses": len(lines),
            "sha256": _digest("\n".join(lines)),
        }
    return {
        "kind": "function",
        "defined_in": _qualified(defined_in),
        "signature": str(inspect.signature(function)),
        "sha256": _digest(inspect.getsource(function)),
    }


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def record() -> dict[str, Any]:
    versions = {}
    for name in RECORDED_DISTRIBUTIONS:
        versions[name] = metadata.version(name)
    versions["python"] = "{}.{}".format(*sys.version_info[:2])
    return {
        "_how": "python -m tests.faust_contract --write (see tests/unit/test_faust_contract.py)",
        "recorded_with": versions,
        "names": {name: describe(name) for name in sorted(PATCHED)},
    }


def load() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def differences(recorded: dict[str, Any], name: str, current: dict[str, Any]) -> list[str]:
    """What changed in ``name`` between the fixture and now, one line each, naming it. The
    signature is compared on the Python the fixture was recorded with only: its text shows
    evaluated annotations, which other Python versions may print differently (the source
    digest covers the ``def`` line anyway)."""
    was = recorded["names"].get(name)
    if was is None:
        return [f"{name}: not in {FIXTURE.name}"]
    found = []
    if was.get("defined_in") != current.get("defined_in"):
        found.append(
            f"{name}: now defined in {current.get('defined_in')}, was {was.get('defined_in')}"
        )
    same_python = recorded["recorded_with"].get("python") == "{}.{}".format(*sys.version_info[:2])
    if same_python and was.get("signature") != current.get("signature"):
        found.append(
            f"{name}: signature now {current.get('signature')}, was {was.get('signature')}"
        )
    if was.get("kind") != current.get("kind") or was["sha256"] != current["sha256"]:
        what = "its uses in the source" if current["kind"] == "attribute" else "its source"
        found.append(f"{name}: {what} changed")
    return found


def check() -> list[str]:
    """Every difference between the fixture and the installed packages."""
    recorded = load()
    found = [
        f"{name}: in {FIXTURE.name} but not in PATCHED"
        for name in recorded["names"]
        if name not in PATCHED
    ]
    for name in sorted(PATCHED):
        try:
            current = describe(name)
        except (ImportError, AttributeError, LookupError, TypeError) as exc:
            found.append(f"{name}: {exc}")
            continue
        found += differences(recorded, name, current)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faust_contract", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--write", action="store_true", help=f"record the installed versions in {FIXTURE}"
    )
    args = parser.parse_args(argv)
    if args.write:
        FIXTURE.write_text(json.dumps(record(), indent=2, sort_keys=True) + "\n")
        print(f"recorded {len(PATCHED)} names in {FIXTURE}")
        return 0
    found = check()
    for line in found:
        print(line)
    print(f"{len(found)} difference(s) from {FIXTURE}" if found else f"as recorded in {FIXTURE}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
