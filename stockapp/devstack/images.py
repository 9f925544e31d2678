"""The stockapp image (docker/Dockerfile), built with podman: `make image` and the tests.

The Dockerfile takes its base images as build arguments, defaulting to the official
``python:3.11-slim`` and ``node:20-slim``. Those are used when podman has them. Where no image
registry is reachable (these machines), stand-ins are built from Debian packages instead: a
``debootstrap --variant=minbase`` of bookworm from the mirror apt uses here, with this
machine's certificates (the package registries' connections are signed with them), then
Python 3.11 and venv, or Node.js and npm, by apt (``docker/standin/*.Containerfile``). Each is
tagged with a hash of its recipe, so it is built once per machine and recipe. The stand-ins
serve the tests only: the image users build is the same Dockerfile on the official bases.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stockapp.devstack import podman
from stockapp.devstack.checkout import stack_files
from stockapp.devstack.settings import DevstackSettings
from stockapp.errors import StockappError

IMAGE = "localhost/stockapp:local"  # docker/compose.yaml's `image: stockapp:local`
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The machine's own certificate authorities, which Debian's ca-certificates package adds to
# the bundle (/etc/ssl/certs/ca-certificates.crt) that pip and Node are pointed at.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
APT_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]
# Paths a base image needs none of (the official slim images leave them out too).
STRIPPED = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
)


@dataclass(frozen=True)
class Bases:
    python: str
    node: str
    kind: str  # "official" or "stand-in"
    seconds: float  # spent making them now (0 when they were there)

    def build_args(self) -> list[str]:
        return [
            "--build-arg",
            f"PYTHON_IMAGE={self.python}",
            "--build-arg",
            f"NODE_IMAGE={self.node}",
        ]

    def line(self) -> str:
        made = f", made in {self.seconds:.0f} s" if self.seconds else ", cached"
        return f"{self.kind} bases {self.python} and {self.node}" + (
            made if self.kind == "stand-in" else ""
        )


def repository() -> Path:
    return stack_files().parent


def official() -> tuple[str, str]:
    """The Dockerfile's default bases (its ``ARG PYTHON_IMAGE=...`` and ``NODE_IMAGE``)."""
    text = (repository() / "docker" / "Dockerfile").read_text()
    found = dict(re.findall(r"^ARG (PYTHON_IMAGE|NODE_IMAGE)=(\S+)$", text, re.M))
    return found["PYTHON_IMAGE"], found["NODE_IMAGE"]


def bases(settings: DevstackSettings) -> Bases:
    """The official bases when podman has both; otherwise the stand-ins, made if missing."""
    python, node = official()
    if podman.image_exists(python) and podman.image_exists(node):
        return Bases(python, node, "official", 0.0)
    started = time.monotonic()
    debian = _debian(settings)
    made = {name: _standin(name, debian) for name in ("python", "node")}
    elapsed = time.monotonic() - started
    return Bases(
        made["python"][0],
        made["node"][0],
        "stand-in",
        elapsed if any(new for _, new in made.values()) else 0.0,
    )


def mirror() -> str:
    """The Debian mirror apt uses on this machine (the suite's main component, not security)."""
    for path in APT_SOURCES:
        files = sorted(path.glob("*")) if path.is_dir() else [path]
        for source in files:
            if not source.is_file() or source.suffix not in ("", ".list", ".sources"):
                continue
            text = source.read_text(errors="replace")
            # One-line format: deb [options] URI SUITE COMPONENTS...
            for uri, suite in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", text, re.M):
                if suite == SUITE and "security" not in uri:
                    return uri
            # deb822 format: a stanza with URIs: and Suites: naming the suite.
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and SUITE in suites.group(1).split():
                    if "security" not in uris.group(1):
                        return uris.group(1)
    return DEFAULT_MIRROR


def _hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _local_cas() -> list[Path]:
    return sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []


def _debian(settings: DevstackSettings) -> str:
    """Debian bookworm minbase with this machine's certificates, as an image (made once)."""
    source = mirror()
    key = _hash(
        SUITE, source, "minbase", "ca-certificates", *(p.read_bytes() for p in _local_cas())
    )
    tag = f"localhost/stockapp-standin-debian:{key}"
    if podman.image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise StockappError(
            "the stand-in base images need debootstrap (apt-get install debootstrap; "
            "`make image` and `make test` install it)"
        )
    root = settings.stack_dir / "standin" / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        strap = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=ca-certificates",
                SUITE,
                str(root),
                source,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if strap.returncode != 0:
            last = (strap.stderr or strap.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StockappError(f"debootstrap {SUITE} from {source} failed: {last[0]}")
        for ca in _local_cas():
            shutil.copy(ca, root / "usr/local/share/ca-certificates" / ca.name)
        subprocess.run(
            ["chroot", str(root), "update-ca-certificates"], capture_output=True, check=True
        )
        for stripped in STRIPPED:
            shutil.rmtree(root / stripped, ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True)
        podman.podman(["import", "--quiet", "-", tag], input_bytes=tar.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _drop_other_tags(tag)
    return tag


def _standin(name: str, debian: str) -> tuple[str, bool]:
    """The stand-in for one official base, built from its recipe on ``debian``; whether it was
    built now."""
    recipe = repository() / "docker" / "standin" / f"{name}.Containerfile"
    tag = f"localhost/stockapp-standin-{name}:{_hash(debian, recipe.read_bytes())}"
    if podman.image_exists(tag):
        return tag, False
    podman.podman(
        [
            "build",
            "--quiet",
            "--network",
            "host",  # apt reaches the mirror as the machine does
            "--build-arg",
            f"DEBIAN={debian}",
            "-f",
            str(recipe),
            "-t",
            tag,
            str(recipe.parent),
        ],
        timeout=900,
    )
    _drop_other_tags(tag)
    return tag, True


def _drop_other_tags(tag: str) -> None:
    """Stand-ins of an earlier recipe are never used again: removed, so that they do not pile
    up (their layers go with them unless another image shares them)."""
    name = tag.rsplit(":", 1)[0]
    listed = podman.podman(["images", "--format", "{{.Repository}}:{{.Tag}}", name], check=False)
    for other in listed.stdout.split():
        if other != tag:
            podman.podman(["rmi", other], check=False)


def build_command(bases: Bases, tag: str = IMAGE, context: Path | None = None) -> list[str]:
    """The podman build of docker/Dockerfile from ``context`` (the repository's root).

    ``--format docker``: the OCI format has no HEALTHCHECK (podman drops it with a warning).
    ``--network host``: the RUN steps reach PyPI and npm as the machine does.
    """
    context = context or repository()
    return [
        podman.executable(),
        "build",
        "--format",
        "docker",
        "--network",
        "host",
        *bases.build_args(),
        "-f",
        str(context / "docker" / "Dockerfile"),
        "-t",
        tag,
        str(context),
    ]


def build(settings: DevstackSettings, tag: str = IMAGE, quiet: bool = False) -> tuple[Bases, float]:
    """Builds the image (output shown unless ``quiet``); the bases used and the seconds the
    image build itself took."""
    chosen = bases(settings)
    started = time.monotonic()
    result = subprocess.run(
        build_command(chosen, tag),
        env=podman.env(),
        capture_output=quiet,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        tail = (result.stdout or "") + (result.stderr or "") if quiet else ""
        last = tail.strip().splitlines()[-1:] or ["its output is above"]
        raise StockappError(f"podman build of {tag} failed: {last[0]}")
    return chosen, time.monotonic() - started
