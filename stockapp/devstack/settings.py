"""The local stack's own settings: read by stockapp/devstack only, never by the program.

``python -m stockapp.devstack`` starts and configures the servers the program then talks to,
so it reads both: :class:`DevstackSettings` is the program's :class:`~stockapp.settings.Settings`
plus :class:`StackSettings` (heaps, ports of the local servers, where they live). Their
variables are ``STOCKAPP_STACK_*`` and ``STOCKAPP_RUN_DIR``; a worker or any other command
ignores them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from stockapp.settings import SHOWN_DEFAULT, Port, Section, Settings, local_dir, read_settings


class StackSettings(Section):
    """The local stack that `make up` starts (stockapp/devstack; a tool of a checkout, ignored
    when pointing at external servers)."""

    # Computed when the settings are read (a checkout's and an installed package's differ).
    stack_dir: Path = Field(
        default_factory=lambda: local_dir(".stack", "stack"),
        description="Local stack: server jars, data and logs. Point several clones at one "
        "directory to share the jar download. The local stack (`make up`) runs from a checkout "
        "only: installed, `python -m stockapp.devstack` says so in one line.",
        json_schema_extra={
            SHOWN_DEFAULT: "checkout: `<repo>/.stack`; installed: `<user data>/stack`"
        },
    )
    run_dir: Path = Field(
        default_factory=lambda: local_dir(".run", "run"),
        description="PID files and logs of the processes `make demo` starts.",
        json_schema_extra={SHOWN_DEFAULT: "checkout: `<repo>/.run`; installed: `<user data>/run`"},
    )
    stack_java_home: str = Field(
        "",
        description="Java 17 installation for the servers. Empty: `JAVA_HOME`, `java` on the "
        "`PATH`, then `/usr/lib/jvm/*17*` are tried; Cassandra 5.0 refuses Java 24+.",
    )
    stack_kafka_controller_port: Port = Field(
        9093, description="KRaft controller port of the local broker."
    )
    stack_kafka_heap: str = Field("512m", description="Local Kafka heap (`-Xms`/`-Xmx`).")
    stack_cassandra_storage_port: Port = Field(7000, description="Local Cassandra inter-node port.")
    stack_cassandra_heap: str = Field("1g", description="Local Cassandra heap.")
    stack_start_timeout: int = Field(
        180, ge=10, description="Seconds `make up` waits for both servers to answer."
    )
    # A stack whose servers require credentials and TLS (docs/security.md).
    stack_secure: bool = Field(
        False,
        description="A local stack that requires credentials and TLS: Kafka gains a SASL_SSL "
        "and an SSL (client certificate) listener, Cassandra a login and TLS with a client "
        "certificate. `up` writes the client settings to `<stack dir>/secure.env`. "
        "docs/security.md. Set it on a fresh stack directory (Kafka's SCRAM users are made "
        "when its storage is formatted).",
    )
    stack_kafka_sasl_ssl_port: Port = Field(
        9094,
        description="The secure stack's SASL_SSL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).",
    )
    stack_kafka_ssl_port: Port = Field(
        9095, description="The secure stack's SSL listener, which requires a client certificate."
    )


# As stockapp.settings.SECTIONS: the stack's section, for docs/configuration.md.
SECTIONS: dict[str, type[Section]] = {"Local stack": StackSettings}


# Its own section last, so the program's settings are validated (and a bad one named) first.
class DevstackSettings(StackSettings, Settings):
    """What the local stack's tool reads: the program's settings (to reach and configure the
    servers it starts, and to run the demo) and the stack's own."""


def load_devstack_settings() -> DevstackSettings:
    """Read the environment now; a bad value is a SettingsError naming the variable."""
    return read_settings(DevstackSettings)
