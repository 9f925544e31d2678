"""`make up` / `make down` on a private stack (own directory and ports): up twice is a no-op,
down leaves no process behind, and up after down keeps the data."""

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from stockapp.db.migrate import migrate
from stockapp.devstack import processes
from stockapp.settings import load_settings
from stockapp.sinks.cassandra_session import connect
from tests.helpers import BIN, create_topic, free_port, read_topic, run


def _pids(stack_dir: Path) -> dict[str, int | None]:
    return {
        name: processes.read_pid(stack_dir / name / f"{name}.pid")
        for name in ("kafka", "cassandra")
    }


async def _produce(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"kept", key=b"K")
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str) -> list[bytes]:
    return [r.value for r in await read_topic(bootstrap, topic, idle_ms=10000)]


@pytest.fixture
def private_stack(tmp_path, monkeypatch, stack):
    env = {
        "STOCKAPP_STACK_DIR": str(tmp_path / "stack"),
        "STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "STOCKAPP_STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        "STOCKAPP_CASSANDRA_PORT": str(free_port()),
        "STOCKAPP_STACK_CASSANDRA_STORAGE_PORT": str(free_port()),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Reuse the shared stack's jars instead of copying 110 MB again.
    for server in ("kafka", "cassandra"):
        (tmp_path / "stack" / server).mkdir(parents=True)
        os.symlink(stack.stack_dir / server / "lib", tmp_path / "stack" / server / "lib")
    yield env
    run([str(BIN / "python"), "-m", "stockapp.devstack", "down"], env=env)


def test_up_twice_down_up_keeps_data(private_stack):
    env = private_stack
    stack_dir = Path(env["STOCKAPP_STACK_DIR"])
    devstack = [str(BIN / "python"), "-m", "stockapp.devstack"]

    first = run(devstack + ["up"], env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("starting") == 2
    pids = _pids(stack_dir)
    assert all(pids.values())

    second = run(devstack + ["up"], env=env)
    assert second.returncode == 0
    assert "starting" not in second.stdout and second.stdout.count("already running") == 2
    assert _pids(stack_dir) == pids

    settings = load_settings()
    bootstrap = settings.kafka_bootstrap[0]
    asyncio.run(_produce(bootstrap, "lifecycle"))
    migrate(settings, keyspace="lifecycle")
    cluster, session = connect(settings, keyspace="lifecycle")
    session.execute("INSERT INTO symbols (symbol, last_price) VALUES ('KEPT', 1.5)")
    cluster.shutdown()

    down = run(devstack + ["down"], env=env)
    assert down.returncode == 0 and down.stdout.count("stopped") == 2
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or processes._start_time(pid) is None
    assert _pids(stack_dir) == {"kafka": None, "cassandra": None}
    status = run(devstack + ["status"], env=env)
    assert status.returncode == 3

    again = run(devstack + ["up"], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert asyncio.run(_consume(bootstrap, "lifecycle")) == [b"kept"]
    cluster, session = connect(settings, keyspace="lifecycle")
    row = session.execute("SELECT last_price FROM symbols WHERE symbol = 'KEPT'").one()
    cluster.shutdown()
    assert row is not None and row.last_price == 1.5
