"""docker/compose.yaml's stockapp services run for real by podman-compose (PyPI), on the image
test_image.py built: the schema job, two workers and the simulator, against the local stack.

The file's Kafka, Cassandra, Prometheus and Grafana images cannot be pulled here (no image
registry is reachable), so an override file (written below, into the test's folder) points the
stockapp services at the local stack, which users never need: they run the whole file
unchanged. What the override changes, and why:

- Host networking, for every stockapp service. The local Kafka advertises 127.0.0.1:9092; a
  container on a bridge network would reach its bootstrap address through the host's gateway
  and then be sent to 127.0.0.1, its own loopback. In the users' file Kafka is a service on
  the Compose network (advertised as kafka:29092), so there each worker has its own address
  (``STOCKAPP_WEB_ADVERTISE=auto``, the container's IP) and the same port.
- So the two workers need distinct ports on the one network: the second is the file's worker
  service again (``extends``), on another port, each advertising 127.0.0.1 and its own port,
  bound to loopback. The published port range is reset: podman 4.3 cannot map a host port
  range to one container port ("port ranges have different lengths"), and on the host network
  nothing is published anyway.
- Topics, keyspace, app id: the test's own. ``--no-deps``, with the services started in the
  order their conditions say: podman-compose ignores ``service_healthy`` below podman 4.6,
  and the kafka and cassandra services are not started here.

Checked: each worker advertises its own address; a candle request to either worker for any
symbol is answered by the symbol's owner with the oracle's candles (routing across the
containers); after `podman-compose stop` of one worker the other takes its partitions, and the
stream published before, during and after the stop gives the oracle's candles; the
simulator's quotes reach the workers.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import subprocess
import threading
import time

import orjson
import pytest

from stockapp.devstack import podman
from tests.helpers import BIN, REPO, free_port, http_json
from tests.integration.containers import finished, remove
from tests.integration.workers import produce, with_indicators, worker_env
from tests.oracle import DEFAULT_INDICATORS, expected_candles
from tests.streams import generate_ticks

COMPOSE = REPO / "docker" / "compose.yaml"
TZ = "America/New_York"
SYMBOLS = ["CA", "CB", "CC", "CD", "CE", "CF"]
START_MS = 1_767_621_600_000  # 2026-01-05 14:00 UTC
# podman and podman-compose: make test's last lane (README "Tests").
pytestmark = pytest.mark.containers


def _override(env: dict[str, str], ports: list[int]) -> str:
    """The override file (see the module's docstring). JSON values are YAML too."""

    def service(extra: dict[str, str]) -> str:
        return f"    network_mode: host\n    environment: {json.dumps({**env, **extra})}\n"

    def worker(port: int) -> dict[str, str]:
        return {
            "STOCKAPP_WEB_PORT": str(port),
            "STOCKAPP_WEB_HOST": "127.0.0.1",
            "STOCKAPP_WEB_ADVERTISE": "127.0.0.1",
        }

    return (
        "services:\n"
        "  migrate:\n"
        + service({})
        + "  worker:\n"
        + service(worker(ports[0]))
        + "    ports: !reset []\n"
        "  worker-2:\n"
        f"    extends: {{file: {COMPOSE}, service: worker}}\n"
        + service(worker(ports[1]))
        + "    ports: !reset []\n"
        "  producer:\n" + service({})
    )


class Project:
    """One podman-compose project of the test's own (its containers named after it)."""

    def __init__(self, name: str, override, secret: str) -> None:
        self.name = name
        self.override = override
        self.env = podman.env({**podman.env(), "STOCKAPP_WORKER_SECRET": secret})

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [
            str(BIN / "podman-compose"),
            "--in-pod",
            "false",  # a pod would give the workers one network namespace, one port
            "-p",
            self.name,
            "-f",
            str(COMPOSE),
            "-f",
            str(self.override),
            *args,
        ]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done

    def container(self, service: str) -> str:
        listed = podman.podman(
            [
                "ps",
                "--all",
                "--filter",
                f"label=io.podman.compose.project={self.name}",
                "--filter",
                f"label=io.podman.compose.service={service}",
                "--format",
                "{{.Names}}",
            ]
        ).stdout.split()
        assert len(listed) == 1, (service, listed)
        return listed[0]

    def remove_all(self) -> None:
        listed = podman.podman(
            [
                "ps",
                "--all",
                "--filter",
                f"label=io.podman.compose.project={self.name}",
                "--format",
                "{{.Names}}",
            ],
            check=False,
        ).stdout.split()
        remove(*listed)


def _get(port: int, path: str) -> tuple[int, dict, dict]:
    try:
        return http_json(port, path, timeout=10)
    except OSError:
        return 0, {}, {}


def _oracle(ticks: list, symbol: str, outputs: tuple[str, ...]) -> list[dict]:
    rows = expected_candles([t for t in ticks if t.symbol == symbol], "1m", TZ)
    return [
        {
            "t": int(r["start"]) // 1000,
            "ohlcv": (r["open"], r["high"], r["low"], r["close"], r["volume"]),
            "indicators": {n: r[n] for n in outputs},
        }
        for _, r in rows.iterrows()
    ]


def _differs(got: list[dict], want: list[dict]) -> str:
    """Empty when the API's candles are the oracle's; else where not. The forming ones (the
    last, and the one before while the grace period has not passed) are compared by OHLCV, not
    by their provisional indicators: with two candles forming, the later one's leave the
    earlier one out (its VWAP here differs from the oracle's, which counts every candle as
    closed). The closed candles' indicators are compared."""
    if [c["t"] for c in got] != [c["t"] for c in want]:
        return f"times {[c['t'] for c in got][-3:]} != {[c['t'] for c in want][-3:]}"
    for g, w in zip(got, want, strict=True):
        if (g["o"], g["h"], g["l"], g["c"], g["v"]) != w["ohlcv"]:
            return f"candle {g['t']}: {g} != {w['ohlcv']}"
        if not g["closed"]:
            continue
        for name, theirs in w["indicators"].items():
            ours = g["indicators"][name]
            same = (
                ours is None
                if math.isnan(theirs)
                else ours is not None and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
            )
            if not same:
                return f"candle {g['t']} {name}: {ours} != {theirs}"
    return ""


def _answers(ports: list[int], ticks: list, outputs: tuple[str, ...]) -> tuple[str, set[str]]:
    """Asks every port for every symbol: a difference from the oracle (empty if none), and the
    workers that answered (the X-Stockapp-Worker header: the symbol's owner)."""
    owners: set[str] = set()
    for symbol in SYMBOLS:
        want = _oracle(ticks, symbol, outputs)
        answered = set()
        for port in ports:
            status, body, headers = _get(port, f"/api/candles/{symbol}?interval=1m&limit=5000")
            if status != 200:
                return f"{symbol} on {port}: {status} {body}", owners
            differs = _differs(body["candles"], want)
            if differs:
                return f"{symbol} on {port}: {differs}", owners
            answered.add(headers.get("X-Stockapp-Worker"))
        if len(answered) != 1:
            return f"{symbol}: answered by {answered}, not by one owner", owners
        owners |= answered
    return "", owners


def _wait(predicate, timeout: float, what: str, detail=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {detail()}")
        time.sleep(1)


def _records(ticks) -> list:
    return [
        (
            t.symbol.encode(),
            orjson.dumps({"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}),
        )
        for t in ticks
    ]


async def _paced(bootstrap: str, topic: str, records: list, batch: int = 35) -> None:
    """Publishes in batches of ``batch`` records every 0.2 s (4 s for 700 records)."""
    for i in range(0, len(records), batch):
        await produce(bootstrap, topic, records[i : i + batch])
        await asyncio.sleep(0.2)


@pytest.fixture
def project(stack, stockapp_image, unique, tmp_path):
    keyspace = f"stockapp_compose_{unique}"
    env = worker_env(
        "compose",
        unique,
        keyspace,
        tmp_path,  # not used: each container has the image's /data
        STOCKAPP_KAFKA_BOOTSTRAP=stack.kafka_bootstrap[0],
        STOCKAPP_CASSANDRA_HOSTS=",".join(stack.cassandra_hosts),
        STOCKAPP_IDLE_CLOSE_SECONDS="3600",  # the stream's last candles stay forming
        STOCKAPP_GRACE_SECONDS="5",
        STOCKAPP_MARKET_TIMEZONE=TZ,
        STOCKAPP_INDICATORS=DEFAULT_INDICATORS,
    )
    for name in ("STOCKAPP_DATA_DIR", "STOCKAPP_WEB_PORT"):
        del env[name]
    ports = [free_port(), free_port()]
    override = tmp_path / "compose.local-stack.yaml"
    override.write_text(_override(env, ports))
    found = Project(f"stockapp-test-{unique}", override, secrets.token_hex(32))
    found.ports = ports  # type: ignore[attr-defined]
    found.topic = env["STOCKAPP_TOPIC_QUOTES"]  # type: ignore[attr-defined]
    found.keyspace = keyspace  # type: ignore[attr-defined]
    yield found
    found.remove_all()
    from stockapp.sinks.cassandra_session import connect

    cluster, session = connect(stack, keyspace=None)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def test_compose_runs_the_schema_two_workers_and_the_simulator(stack, project):
    ports: list[int] = project.ports
    outputs = with_indicators(stack, DEFAULT_INDICATORS).indicator_outputs
    bootstrap = stack.kafka_bootstrap[0]

    # The schema job, to its end.
    project.compose("up", "-d", "--no-deps", "migrate")
    code, lines = finished(project.container("migrate"), timeout=300)
    assert code == 0, "\n".join(lines)

    # Two workers; each owns some of the partitions and advertises its own address.
    project.compose("up", "-d", "--no-deps", "worker", "worker-2")

    def assigned() -> list[set[str]]:
        return [set(_get(port, "/stats")[1].get("ends", {})) for port in ports]

    def split() -> bool:
        owned = assigned()
        return (
            all(owned)
            and not owned[0] & owned[1]
            and all(_get(port, "/ready")[0] == 200 for port in ports)
        )

    _wait(split, 300, "both workers ready with partitions of their own", assigned)

    # Part of the stream with both workers: either worker answers every symbol with the
    # oracle's candles, forwarding to the owner when it is the other (routing across
    # containers), and each answer names its owner by the address it advertises.
    ticks = generate_ticks(
        2400, SYMBOLS, seed=25, start_ms=START_MS, mean_gap_ms=3000, jitter_ms=2000
    )
    before, during, after = ticks[:1000], ticks[1000:1700], ticks[1700:]
    asyncio.run(produce(bootstrap, project.topic, _records(before)))
    _wait(
        lambda: not _answers(ports, before, outputs)[0],
        300,
        "the oracle's candles from both workers",
        lambda: _answers(ports, before, outputs)[0],
    )
    owners = _answers(ports, before, outputs)[1]
    assert owners == {f"http://127.0.0.1:{port}" for port in ports}, owners

    # One worker stopped while the stream goes on (a part published in small batches as the
    # stop happens, the rest after it): the other takes every partition, and the whole stream
    # gives the oracle's candles.
    publishing = threading.Thread(
        target=lambda: asyncio.run(_paced(bootstrap, project.topic, _records(during)))
    )
    publishing.start()
    try:
        project.compose("stop", "worker-2")
    finally:
        publishing.join(timeout=120)
    assert not publishing.is_alive()
    code, _ = finished(project.container("worker-2"), timeout=60)
    assert code != 137, "worker-2 was killed: it did not end within the grace period"
    remaining = ports[:1]
    _wait(
        lambda: len(assigned()[0]) == 8 and _get(ports[0], "/ready")[0] == 200,
        300,
        "the remaining worker to own all 8 partitions",
        assigned,
    )
    asyncio.run(produce(bootstrap, project.topic, _records(after)))
    _wait(
        lambda: not _answers(remaining, ticks, outputs)[0],
        300,
        "the oracle's candles of the whole stream",
        lambda: _answers(remaining, ticks, outputs)[0],
    )
    assert _answers(remaining, ticks, outputs)[1] == {f"http://127.0.0.1:{ports[0]}"}

    # The simulator, as the file runs it: its quotes reach the worker.
    quotes = _get(ports[0], "/stats")[1]["counters"].get("quotes", 0)
    project.compose("up", "-d", "--no-deps", "producer")
    _wait(
        lambda: _get(ports[0], "/stats")[1]["counters"].get("quotes", 0) >= quotes + 20,
        120,
        "the simulator's quotes",
        lambda: _get(ports[0], "/stats")[1].get("counters"),
    )
    project.compose("stop", "producer")
