"""Apache Cassandra 5.0 as one node, started from the cassandra-all jar on Java 17."""

from __future__ import annotations

from stockapp.connectivity import check_cassandra
from stockapp.devstack import secure
from stockapp.devstack.jars import lib_dir
from stockapp.devstack.server import Server, conf_dir
from stockapp.devstack.settings import DevstackSettings


def _jvm_options() -> list[str]:
    lines = (conf_dir() / "cassandra-jvm17.options").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


OPEN = "authenticator: AllowAllAuthenticator\nauthorizer: AllowAllAuthorizer"


def _prepare(server: Server, java: str) -> list[str]:
    s = server.settings
    security = OPEN
    if s.stack_secure:
        security = secure.cassandra_yaml(secure.ensure_material(s, java))
    yaml = server.render(
        "cassandra.yaml",
        server.home / "cassandra.yaml",
        port=server.port,
        storage_port=s.stack_cassandra_storage_port,
        data_dir=server.data_dir,
        security=security,
    )
    libs = lib_dir(s.stack_dir, "cassandra")
    jamm = sorted(libs.glob("jamm-*.jar"))
    # JNA unpacks a native library into its temp dir; keep it under the stack in case /tmp is
    # mounted noexec.
    jna_tmp = server.home / "tmp"
    jna_tmp.mkdir(parents=True, exist_ok=True)
    return [
        java,
        f"-Xms{s.stack_cassandra_heap}",
        f"-Xmx{s.stack_cassandra_heap}",
        *_jvm_options(),
        *([f"-javaagent:{jamm[0]}"] if jamm else []),
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.config=file://{yaml}",
        f"-Dcassandra.storagedir={server.data_dir}",
        f"-Dcassandra.logdir={server.log_dir}",
        f"-Dlogback.configurationFile={conf_dir() / 'cassandra-logback.xml'}",
        f"-Djna.tmpdir={jna_tmp}",
        # The default superuser is made 10 s after start; nothing here needs that delay.
        *(["-Dcassandra.superuser_setup_delay_ms=0"] if s.stack_secure else []),
        "-cp",
        f"{libs}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]


def cassandra_server(settings: DevstackSettings) -> Server:
    return Server(
        name="cassandra",
        settings=settings,
        prepare=_prepare,
        probe=check_cassandra,
        port=settings.cassandra_port,
    )
