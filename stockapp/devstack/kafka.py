"""Apache Kafka in single-node KRaft mode (combined broker and controller)."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from stockapp.connectivity import check_kafka
from stockapp.devstack import secure
from stockapp.devstack.jars import lib_dir
from stockapp.devstack.server import Server, conf_dir
from stockapp.devstack.settings import DevstackSettings
from stockapp.errors import StockappError


def _prepare(server: Server, java: str) -> list[str]:
    s = server.settings
    extra = {"listeners_extra": "", "protocols_extra": "", "security": ""}
    users: list[str] = []
    if s.stack_secure:
        tls = secure.ensure_material(s, java)
        extra = secure.kafka_properties(s, tls)
        users = secure.scram_users(tls)
        if (server.data_dir / "meta.properties").exists() and not _scram_marker(server).exists():
            raise StockappError(
                f"Kafka's storage in {server.data_dir} was formatted without the secure stack's "
                "SCRAM users (they are made at format time): stop the stack and remove that "
                "directory, or use another STOCKAPP_STACK_DIR"
            )
    props = server.render(
        "kafka-server.properties",
        server.home / "server.properties",
        port=server.port,
        controller_port=s.stack_kafka_controller_port,
        data_dir=server.data_dir,
        **extra,
    )
    classpath = f"{lib_dir(s.stack_dir, 'kafka')}/*"
    jvm = [
        java,
        f"-Xms{s.stack_kafka_heap}",
        f"-Xmx{s.stack_kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={server.log_dir}",
        f"-Dlog4j2.configurationFile={conf_dir() / 'kafka-log4j2.properties'}",
        "-cp",
        classpath,
    ]
    # KRaft needs its log directory formatted once with a cluster id; keep the id with the data.
    id_file = server.home / "cluster.id"
    if not id_file.exists():
        id_file.write_text(_new_cluster_id() + "\n")
    if not (server.data_dir / "meta.properties").exists():
        cluster_id = id_file.read_text().strip()
        fmt = subprocess.run(
            jvm
            + [
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
                *users,
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise StockappError(
                "Formatting Kafka storage failed: "
                + " | ".join((fmt.stdout + fmt.stderr).splitlines()[-3:])
            )
        if users:
            _scram_marker(server).touch()
    return jvm + ["kafka.Kafka", str(props)]


def _scram_marker(server: Server) -> Path:
    return server.home / "scram-users"


def _new_cluster_id() -> str:
    """A Kafka cluster id: a UUID in URL-safe base64 (22 chars), not starting with '-'
    (the storage tool's argument parser would read that as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_server(settings: DevstackSettings) -> Server:
    return Server(
        name="kafka",
        settings=settings,
        prepare=_prepare,
        probe=check_kafka,
        port=settings.kafka_host_port[1],
    )
