"""The stockapp image (docker/Dockerfile) built and run as users run it, by podman.

Built by the ``stockapp_image`` fixture as `make image` builds it: on the official base images
when podman has them, else on stand-ins made of Debian packages (no image registry is reachable
here; stockapp/devstack/images.py), which the fixture's output line names. Then, against the
local stack, on the host's network (the local Kafka advertises 127.0.0.1:9092): the container
runs as uid 10001 with a read-only root and nothing writable but the /data volume;
`stockapp db migrate` and `stockapp worker` in it reach `/ready`; a published stream's 1m
candles equal the oracle's; the image's HEALTHCHECK passes; `podman stop` (SIGTERM) ends the
worker within podman's grace period and the container started again on the same volume goes on
exactly. Bad input stops in one line with a non-zero status: a build context without the front
end, no reachable Kafka, an unwritable /data.
"""

from __future__ import annotations

import asyncio
import calendar
import shutil
import subprocess

import orjson
import pytest

from stockapp.devstack import images, podman
from stockapp.settings import load_settings
from stockapp.sinks.cassandra_session import connect
from tests.helpers import REPO, free_port, http_json
from tests.integration.containers import (
    ContainerWorker,
    container_env,
    finished,
    healthcheck,
    inspect,
    remove,
    run_args,
)
from tests.integration.workers import produce, wait_for, with_indicators, worker_env
from tests.oracle import (
    DEFAULT_INDICATORS,
    assert_candle_row,
    assert_close_or_null,
    expected_candles,
)
from tests.streams import generate_ticks

TZ = "America/New_York"
SYMBOLS = ["KA", "KB", "KC"]
START_MS = 1_767_621_600_000  # 2026-01-05 14:00 UTC
# podman's default for `podman stop` (and Docker's): SIGTERM, then SIGKILL after 10 s.
STOP_GRACE = 10
# podman: make test's last lane (README "Tests").
pytestmark = pytest.mark.containers


def _one_error_line(lines: list[str], start: str) -> str:
    """The one line a refusal prints (nothing else from the container), no traceback."""
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert len(lines) == 1, "\n".join(lines)
    assert lines[0].startswith(start), lines[0]
    return lines[0]


def test_a_build_without_the_front_end_stops_in_one_line(stockapp_image, tmp_path):
    """A build context lacking frontend/ (the front end's sources): the image would have no
    chart, so the build stops at the front-end stage's first step, saying so in one line."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(REPO / name, context / name)
    for folder in ("stockapp", "agents", "tables", "docker"):
        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO / folder, context / folder, ignore=skip)
    bases = images.bases(load_settings())  # made by the fixture already
    tag = "localhost/stockapp-test:no-frontend"
    command = images.build_command(bases, tag=tag, context=context)
    built = subprocess.run(command, env=podman.env(), capture_output=True, text=True, timeout=600)
    output = built.stdout + built.stderr
    assert built.returncode != 0, output[-3000:]
    ours = [line for line in output.splitlines() if line.startswith("stockapp:")]
    assert ours == [
        "stockapp: the build context has no frontend/package.json and package-lock.json (the "
        "front end's sources, which the image serves): build from the repository's root: "
        "docker build -f docker/Dockerfile ."
    ], output[-3000:]
    assert "Traceback" not in output
    assert not podman.image_exists(tag)


def test_a_container_without_a_reachable_kafka_stops_in_one_line(stockapp_image, unique):
    port = free_port()  # nothing listens there
    name = f"stockapp-test-nokafka-{unique}"
    env = {
        "STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "STOCKAPP_WEB_HOST": "127.0.0.1",
        "STOCKAPP_WEB_PORT": str(free_port()),
    }
    try:
        podman.podman(run_args(name, env))
        code, lines = finished(name)
    finally:
        remove(name)
    assert code == 1
    line = _one_error_line(lines, "stockapp: error: ")
    assert f"127.0.0.1:{port}" in line and "STOCKAPP_KAFKA_BOOTSTRAP" in line, line


def test_a_container_with_an_unwritable_data_volume_stops_in_one_line(
    stockapp_image, unique, tmp_path
):
    """/data bound to a host directory of root's (mode 755): the image's user cannot write it."""
    data = tmp_path / "root-owned"
    data.mkdir(mode=0o755)
    port = free_port()
    name = f"stockapp-test-rodata-{unique}"
    env = {"STOCKAPP_WEB_HOST": "127.0.0.1", "STOCKAPP_WEB_PORT": str(port)}
    try:
        podman.podman(run_args(name, env, data=str(data)))
        code, lines = finished(name)
    finally:
        remove(name)
    assert code == 1
    assert _one_error_line(lines, "stockapp: error: ") == (
        f"stockapp: error: the worker's state directory /data/worker-{port} is not writable by "
        "uid 10001 (Permission denied): set STOCKAPP_DATA_DIR to a directory this user can "
        "write (in a container: a volume at /data that uid 10001 can write)"
    )
    assert list(data.iterdir()) == []


def ready(port: int) -> int:
    """/ready's status; 0 while nothing answers on the port."""
    try:
        return http_json(port, "/ready", timeout=5)[0]
    except OSError:
        return 0


def _stored_1m(session, keyspace: str) -> dict:
    rows = {}
    for row in session.execute(f"SELECT * FROM {keyspace}.candles", timeout=60):
        if row.interval == "1m":
            start = calendar.timegm(row.start.timetuple()) * 1000 + row.start.microsecond // 1000
            rows[(row.symbol, start)] = row
    return rows


def _records(ticks) -> list:
    return [
        (
            t.symbol.encode(),
            orjson.dumps({"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}),
        )
        for t in ticks
    ]


@pytest.fixture
def volume(unique):
    name = f"stockapp-test-data-{unique}"
    podman.podman(["volume", "create", name])
    yield name
    podman.podman(["volume", "rm", "--force", name], check=False)


def test_the_image_runs_read_only_computes_the_oracle_s_candles_and_stops_cleanly(
    stack, stockapp_image, unique, volume, tmp_path
):
    keyspace = f"stockapp_image_{unique}"
    env = container_env(
        worker_env(
            "image",
            unique,
            keyspace,
            tmp_path,  # replaced by the image's /data
            STOCKAPP_IDLE_CLOSE_SECONDS="3",  # the stream's last candles close once it stops
            STOCKAPP_GRACE_SECONDS="5",
            STOCKAPP_MARKET_TIMEZONE=TZ,
            STOCKAPP_LOG_LEVEL="INFO",
            STOCKAPP_INDICATORS=DEFAULT_INDICATORS,  # the oracle's
        )
    )
    port = int(env["STOCKAPP_WEB_PORT"])
    ticks = generate_ticks(
        1500, SYMBOLS, seed=24, start_ms=START_MS, mean_gap_ms=3000, jitter_ms=2000
    )
    # Two thirds before the stop, the rest while the worker is stopped: the candles forming at
    # the stop must go on from the state the volume (and the changelog) kept.
    before, after = ticks[:1000], ticks[1000:]
    expected = {}
    for _, row in expected_candles(ticks, "1m", TZ).iterrows():
        expected[(row["symbol"], int(row["start"]))] = row
    worker = ContainerWorker(f"stockapp-test-worker-{unique}", env, volume)
    migrate = f"stockapp-test-migrate-{unique}"
    cluster, session = connect(stack, keyspace=None)
    try:
        # The schema, by the image's `stockapp db migrate` (read-only too).
        podman.podman(run_args(migrate, env, command=("stockapp", "db", "migrate")))
        code, lines = finished(migrate, timeout=300)
        assert code == 0, "\n".join(lines)
        assert any(line.startswith("keyspace ") for line in lines), lines

        bootstrap = stack.kafka_bootstrap[0]
        asyncio.run(produce(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], _records(before)))
        worker.start()
        # As users run it: uid 10001, a read-only root filesystem, /data a volume.
        assert inspect(worker.name, "{{.Config.User}}") == "10001:10001"
        assert inspect(worker.name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        uid = podman.podman(["exec", worker.name, "id", "-u"]).stdout.strip()
        assert uid == "10001"
        wait_for(lambda: ready(port) == 200, 300, "/ready", worker)
        wait_for(
            lambda: worker.stats().get("quotes", 0) >= len(before), 300, "the first part", worker
        )
        # The image's HEALTHCHECK, run by podman (no systemd here to run it on a timer).
        checked = healthcheck(worker.name)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        took, code = worker.stop_timed(STOP_GRACE)
        print(f"podman stop: the worker ended in {took:.1f} s with status {code}")
        assert code != 137, "the worker was killed: it did not end within the grace period"
        assert took < STOP_GRACE

        asyncio.run(produce(bootstrap, env["STOCKAPP_TOPIC_QUOTES"], _records(after)))
        worker.start()  # the same container: its volume, its settings
        wait_for(
            lambda: set(expected) <= set(_stored_1m(session, keyspace)),
            300,
            "every 1m candle stored",
            worker,
            missing=lambda: sorted(set(expected) - set(_stored_1m(session, keyspace)))[:10],
        )
        assert ready(port) == 200

        # The only writes were to /data: nothing else could be written (no tmpfs either), and
        # the worker's state is there. (/etc shows as changed by podman's own bind mounts of
        # hosts, hostname and resolv.conf.)
        changed = podman.podman(["diff", worker.name]).stdout.split("\n")
        assert {line for line in changed if line} <= {"C /etc"}, changed
        listed = podman.podman(["exec", worker.name, "ls", "/data"]).stdout.split()
        assert listed == [f"worker-{port}"], listed
        refused = podman.podman(["exec", worker.name, "touch", "/opt/venv/x"], check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr

        stored = _stored_1m(session, keyspace)
        assert set(stored) == set(expected)
        for key, row in expected.items():
            assert_candle_row(stored[key], row, key)
            for name in with_indicators(stack, DEFAULT_INDICATORS).indicator_outputs:
                assert_close_or_null(getattr(stored[key], name), row[name], (key, name))
    finally:
        remove(worker.name, migrate)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
