"""All configuration, read from environment variables with local defaults.

Each setting is declared once, below, with its default, its bounds and its description
(pydantic-settings reads ``STOCKAPP_<NAME>``), in one class per concern: :data:`SECTIONS`.
:class:`Settings` is all of them at once, so every setting is ``settings.<name>`` whatever its
section. docs/configuration.md's tables are generated from these declarations (a field's
``description`` is its row; ``python -m stockapp.settings_doc --write``). The local stack's own
settings (``STOCKAPP_STACK_*``, ``STOCKAPP_RUN_DIR``) are not the program's:
stockapp/devstack/settings.py. Nothing else in the project reads ``os.environ`` for
configuration: import :func:`get_settings` instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stockapp.errors import StockappError
from stockapp.tables.indicators.registry import (
    DEFAULT_SPEC,
    IndicatorDef,
    outputs_of,
    parse_indicators,
)
from stockapp.tables.intervals import parse_interval
from stockapp.tables.sessions import ALWAYS_OPEN, Calendar
from stockapp.tables.sessions import calendar as trading_calendar
from stockapp.tables.sessions import known as known_calendar

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PREFIX = "STOCKAPP_"


def _checkout(root: Path) -> Path | None:
    """``root`` if it is a stockapp source tree (a setup.cfg naming stockapp), as it is when
    the package runs from a checkout (the editable install `make install` makes); None when the
    package is installed from a wheel or an sdist, where ``root`` is site-packages."""
    try:
        text = (root / "setup.cfg").read_text(errors="replace")
    except OSError:
        return None
    return root if re.search(r"^name\s*=\s*stockapp\s*$", text, re.MULTILINE) else None


# The repository this package runs from, or None for an installed package. Defaults that
# point into the repository hold only for a checkout: nothing is ever written to site-packages.
CHECKOUT = _checkout(PACKAGE_DIR.parent)


def user_data_dir() -> Path:
    """An installed stockapp's own directory: ``$XDG_DATA_HOME/stockapp``, by default
    ``~/.local/share/stockapp`` (the same whatever the working directory a service starts in).
    A user without a home directory (some containers) gets ``./.stockapp``."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(base):  # the XDG specification ignores a relative value
        return Path(base) / "stockapp"
    try:
        return Path.home() / ".local" / "share" / "stockapp"
    except (RuntimeError, KeyError):
        return Path.cwd() / ".stockapp"


def local_dir(in_checkout: str, installed: str) -> Path:
    """A directory of this machine's state: in a checkout beside the code (git-ignored ``.data``,
    ``.run``, ``.stack``), else below :func:`user_data_dir`."""
    if CHECKOUT is not None:
        return CHECKOUT / in_checkout
    return user_data_dir() / installed


def _frontend_dist() -> Path:
    """The built front end: a checkout's own build (`make install`), else the copy the wheel
    carries inside the package (setup.py puts it there)."""
    if CHECKOUT is not None:
        return CHECKOUT / "frontend" / "dist"
    return PACKAGE_DIR / "web" / "frontend"


class SettingsError(StockappError):
    """A setting has a value the program cannot use; the message names the variable."""


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` (no IPv6 brackets needed for the loopback defaults)."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    try:
        return host, int(port)
    except ValueError:
        raise SettingsError(f"bad address {address!r}: port is not a number") from None


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return path.is_file()
    except OSError:
        return False


def _secret_file(value: Path | None) -> Path | None:
    if value is not None and not (_readable(value) and value.read_text().strip()):
        raise ValueError("is not a readable file holding the secret")
    return value


def _pem_file(value: Path | None) -> Path | None:
    if value is not None and not _readable(value):
        raise ValueError("is not a readable file")
    return value


# Shorter keys are guessable offline from one signed POST.
MIN_WEBHOOK_SECRET_CHARS = 16

# A comma-separated list in the environment ("a, b,c"), a tuple in the program.
CsvList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]
Port = Annotated[int, Field(ge=1, le=65535)]
Secret = Annotated[str, Field(repr=False)]  # never printed
# A file holding a secret (a mounted secret), checked at start to be readable and not empty.
SecretFile = Annotated[Path | None, AfterValidator(_secret_file)]
# A PEM file (CA, client certificate or key), checked at start to be readable.
PemFile = Annotated[Path | None, AfterValidator(_pem_file)]
# The shortest API token, admin token or worker secret accepted: anything shorter can be
# guessed over the network (docs/security.md).
MIN_SECRET_LENGTH = 16
# The web server's secrets: (variable field, file field, what it guards).
WEB_SECRETS = (
    ("api_token", "api_token_file"),
    ("admin_token", "admin_token_file"),
    ("worker_secret", "worker_secret_file"),
)
# The key of a field's json_schema_extra that says how docs/configuration.md shows a default
# computed when the settings are read (a default_factory): the text, as the actual value
# depends on the machine.
SHOWN_DEFAULT = "shown_default"


class Section(BaseSettings):
    """The base of every group of settings: how each reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # an empty variable means the default
        str_strip_whitespace=True,
        frozen=True,
        extra="ignore",
    )


class KafkaSettings(Section):
    """How every Kafka client of stockapp reaches the brokers (credentials and TLS:
    docs/security.md)."""

    kafka_bootstrap: CsvList = Field(
        ("127.0.0.1:9092",),
        description="Kafka bootstrap servers, comma-separated `host:port`. The local stack "
        "listens on the first one's port.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How clients reach the brokers: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or "
        "`SASL_SSL` (Kafka's `security.protocol`). Every Kafka client of stockapp (worker, "
        "producer, backfill, `check`, topic creation) uses it. docs/security.md.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN",
        description="`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a `SASL_` protocol).",
    )
    kafka_sasl_username: str = Field("", description="SASL user; required with a `SASL_` protocol.")
    kafka_sasl_password: Secret = Field(
        "",
        description="The SASL user's password. Never logged; redacted from error messages.",
    )
    kafka_sasl_password_file: SecretFile = Field(
        None,
        description="A file holding the SASL password (a mounted secret; read at each "
        "connection), used when `STOCKAPP_KAFKA_SASL_PASSWORD` is empty.",
    )
    kafka_ssl_cafile: PemFile = Field(
        None,
        description="PEM file of the CA(s) that signed the brokers' certificates (with "
        "`SSL`/`SASL_SSL`). Empty: the system's trust store.",
    )
    kafka_ssl_certfile: PemFile = Field(
        None,
        description="A client certificate (PEM), for listeners with "
        "`ssl.client.auth=required`. Its key may be in the same file.",
    )
    kafka_ssl_keyfile: PemFile = Field(
        None,
        description="The client certificate's key (PEM), when it is not in the certificate file.",
    )
    kafka_ssl_key_password: Secret = Field("", description="Password of an encrypted client key.")
    kafka_ssl_key_password_file: SecretFile = Field(
        None,
        description="A file holding the client key's password (a mounted secret), used when "
        "`STOCKAPP_KAFKA_SSL_KEY_PASSWORD` is empty.",
    )
    kafka_ssl_check_hostname: bool = Field(
        True,
        description="Check that the broker's certificate names the host connected to. "
        "`false` still verifies the chain.",
    )
    kafka_producer_batch_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        le=64 * 1024 * 1024,
        description="Most bytes a worker's producer puts in one partition's record batch "
        "(Kafka's `batch.size`; aiokafka's default is 16 KiB). A batch of quotes writes a state "
        "of several KB per symbol touched to the state table's changelog, and waits for them: "
        "at 16 KiB that took one request per one or two states per partition, one after the "
        'other (docs/performance.md, "Latency"). Lowered at start to what every topic the '
        "worker writes takes (the smallest `max.message.bytes` of the changelog, candles, "
        "late, dead-letter and signals topics; the broker's `message.max.bytes` for one not "
        "created yet): Kafka refuses a larger record batch.",
    )
    kafka_session_timeout_seconds: float = Field(
        60.0,
        ge=6,
        le=300,
        description="How long the consumer group waits for a worker that stopped answering "
        "(crash, SIGKILL, a frozen host) before its partitions go to the others: the floor of "
        "a takeover (docs/operations.md). Lower means faster takeovers and more false ones "
        "during long GC pauses or network blips; 6 to 300.",
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("is empty")
        for address in value:
            host_port(address, 9092)
        return value

    @property
    def kafka_sasl_secret(self) -> str:
        return _secret(self.kafka_sasl_password, self.kafka_sasl_password_file)

    @property
    def kafka_ssl_key_secret(self) -> str:
        return _secret(self.kafka_ssl_key_password, self.kafka_ssl_key_password_file)

    @property
    def kafka_broker_url(self) -> str:
        """Faust's broker URL form: ``kafka://host:port;host:port``."""
        return "kafka://" + ";".join(self.kafka_bootstrap)

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return host_port(self.kafka_bootstrap[0], 9092)


class TopicSettings(Section):
    """The topics the project reads and writes, and how they are created
    (docs/streaming.md)."""

    topic_quotes: str = Field("quotes.raw", description="Raw quotes topic (docs/streaming.md).")
    topic_candles: str = Field("candles", description="Closed candles with indicators.")
    topic_late: str = Field(
        "quotes.late", description="Quotes that arrived after their candle closed."
    )
    topic_dlq: str = Field(
        "quotes.dlq",
        description="Records that are not valid quotes, with the reason in headers.",
    )
    topic_signals: str = Field(
        "signals",
        description="Signals (rule firings), keyed by the signal's identity; compacted "
        "(docs/signals.md).",
    )
    topic_signals_dlq: str = Field(
        "signals.dlq",
        description="Signals the webhook did not take after its tries, and records of the "
        "signals topic it could not POST, with the reason in headers.",
    )
    quotes_partitions: int = Field(
        8,
        ge=1,
        le=10_000,
        description="Partitions of the quotes topic and of the symbol-state table. Must equal "
        "the topic's real partition count.",
    )
    topic_replication: int = Field(
        1,
        ge=1,
        le=100,
        description="Replication factor of the topics the project creates (quotes, candles, "
        "late, dead letters, signals, changelogs). Use 3 on a real cluster.",
    )


class CassandraSettings(Section):
    """How stockapp reaches Cassandra and writes to it (credentials and TLS:
    docs/security.md)."""

    cassandra_hosts: CsvList = Field(
        ("127.0.0.1",), description="Cassandra contact points, comma-separated."
    )
    cassandra_port: Port = Field(
        9042,
        description="Cassandra native protocol port (the local stack listens on it).",
    )
    cassandra_keyspace: str = Field(
        "stock_data",
        description="Keyspace for quotes and candles (letters, digits, `_`).",
    )
    cassandra_replication: str = Field(
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        description="CQL replication map used when `stockapp db migrate` creates the "
        "keyspace. Use `NetworkTopologyStrategy` in production.",
    )
    cassandra_username: str = Field("", description="User for `PasswordAuthenticator` clusters.")
    cassandra_password: Secret = Field(
        "", description="The user's password. Never logged or printed."
    )
    cassandra_password_file: SecretFile = Field(
        None,
        description="A file holding the password (a mounted secret), used when "
        "`STOCKAPP_CASSANDRA_PASSWORD` is empty.",
    )
    cassandra_ssl: bool = Field(
        False,
        description="TLS to Cassandra (nodes with `client_encryption_options` enabled).",
    )
    cassandra_ssl_cafile: PemFile = Field(
        None,
        description="PEM file of the CA(s) that signed the nodes' certificates. Empty: the "
        "system's trust store.",
    )
    cassandra_ssl_certfile: PemFile = Field(
        None,
        description="A client certificate (PEM), for nodes with `require_client_auth`.",
    )
    cassandra_ssl_keyfile: PemFile = Field(None, description="The client certificate's key (PEM).")
    cassandra_ssl_key_password: Secret = Field(
        "", description="Password of an encrypted client key."
    )
    cassandra_ssl_key_password_file: SecretFile = Field(
        None,
        description="A file holding the client key's password (a mounted secret), used when "
        "`STOCKAPP_CASSANDRA_SSL_KEY_PASSWORD` is empty.",
    )
    cassandra_ssl_check_hostname: bool = Field(
        True,
        description="Check that the node's certificate names the address connected to (each "
        "node's own address: their certificates must list them). `false` still verifies the "
        "chain.",
    )
    cassandra_connect_timeout: float = Field(
        5.0, ge=1, description="Seconds to wait for a Cassandra connection."
    )
    # "Durable" must mean durable on a real cluster: a quorum of the local DC's replicas
    # acknowledges every write (with replication factor 1, as locally, that is the one node).
    cassandra_consistency: Literal["ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "ALL"] = Field(
        "LOCAL_QUORUM",
        description="Consistency level of every read and write (`ONE`, `LOCAL_ONE`, "
        "`LOCAL_QUORUM`, `QUORUM`, `ALL`). A write counts as stored (and its Kafka offsets may "
        "be committed) only once this many replicas acknowledged it; with replication factor 1 "
        "(the local stack) any level is the one node.",
    )
    cassandra_local_dc: str = Field(
        "datacenter1",  # the local stack's (SimpleSnitch) data centre
        description="The data centre the workers talk to (token-aware, DC-aware routing). "
        "`datacenter1` is the local stack's; set yours on a real cluster: a name the cluster "
        "does not have stops start-up with one line listing the ones it has.",
    )
    cassandra_concurrency: int = Field(
        32, ge=1, le=1024, description="Cassandra statements in flight per worker."
    )

    @property
    def cassandra_secret(self) -> str:
        return _secret(self.cassandra_password, self.cassandra_password_file)

    @property
    def cassandra_ssl_key_secret(self) -> str:
        return _secret(self.cassandra_ssl_key_password, self.cassandra_ssl_key_password_file)


class StreamSettings(Section):
    """What the stream processing computes and how: candles, indicators, lateness, batching,
    and the bounds of each worker's state (docs/streaming.md)."""

    # Declared before market_timezone, as it always was: _intervals checks the names against
    # the default time zone (the names are valid or not whatever the zone).
    intervals: CsvList = Field(
        ("1m", "5m", "15m", "1h", "1d"),
        description="Candle intervals: `Ns`, `Nm`, `Nh` below a day (epoch-aligned), and `1d` "
        "(market days).",
    )
    market_timezone: str = Field(
        "America/New_York",
        description="Time zone of `1d` candles and of VWAP sessions with the `ALWAYS_OPEN` "
        "calendar (an exchange's calendar has its own).",
    )
    exchange: str = Field(
        "XNYS",
        description="The trading calendar candles are cut from: an exchange "
        "`pandas_market_calendars` knows (`XNYS`, `NASDAQ`, `XLON`, ...; its sessions, early "
        "closes and holidays, offline), or `ALWAYS_OPEN` (no closed time; days run midnight "
        "to midnight in `STOCKAPP_MARKET_TIMEZONE`). "
        "[streaming.md](streaming.md#sessions).",
    )
    session_hours: Literal["regular", "extended"] = Field(
        "regular",
        description="What counts in candles and indicators with an exchange's calendar: the "
        "`regular` session, or the `extended` day (pre-market and after-hours too). Ticks "
        "outside it are stored as raw quotes with their session, counted in `/stats`.",
    )
    intraday_anchor: Literal["auto", "session", "epoch"] = Field(
        "auto",
        description="Where intraday candles of an exchange's calendar start: at the session's "
        "open (`session`), on the epoch's grid cut at the session's bounds (`epoch`), or "
        "`auto`: `session` for an hour and longer, `epoch` below.",
    )
    # Indicators and their parameters: kind[:param...], comma-separated.
    indicators: CsvList = Field(
        DEFAULT_SPEC,
        description="The indicators every candle carries: `sma:N`, `ema:N`, `rsi:N`, "
        "`macd:FAST:SLOW:SIGNAL`, `bb:N:DEVIATIONS`, `vwap` (`rsi`, `macd`, `bb` alone take "
        "14, 12:26:9, 20:2). Output names, limits and how to change the set (run `stockapp db "
        "migrate` with it first): [streaming.md](streaming.md#indicators).",
    )
    grace_seconds: float = Field(
        5.0,
        ge=0,
        description="How far a symbol's ticks may arrive out of order before they count as late.",
    )
    idle_close_seconds: float = Field(
        10.0,
        ge=0.5,
        description="A replayed symbol that has sent nothing for this long (and whose "
        "partition has no backlog) gets its candles closed.",
    )
    max_future_skew_seconds: float = Field(
        300.0,
        ge=0,
        description="Quotes further ahead of the worker's clock go to the dead-letter topic.",
    )
    store_raw_quotes: bool = Field(True, description="Write every quote to the `quotes` table.")
    batch_max: int = Field(
        5000,
        ge=1,
        description="Most records the agent processes as one batch; also the most records of "
        "applied batches that wait to be stored before the next batch is applied "
        "(docs/streaming.md).",
    )
    batch_within_ms: int = Field(
        1,
        ge=1,
        description="Longest wait, once a record is there, for more to fill a batch. The "
        "default hands a batch on as soon as nothing more is queued: batches grow with what "
        "arrives while the one before is processed, and under a backlog by joining "
        "(`STOCKAPP_BATCH_JOIN_MS`). Larger values trade latency for fewer, larger batches "
        "at moderate rates (50 before 2026-12-06: docs/performance.md).",
    )
    delivery: Literal["queue", "stream"] = Field(
        "queue",
        description="How the quotes agent takes its records: `queue`, in lists straight from "
        "its channel's queue as the fetch loop filled it (stockapp/delivery.py); `stream`, "
        "through Faust's stream (`noack_take`), one event at a time, slower "
        "(docs/performance.md). The same records, acks and commits either way.",
    )
    batch_join_ms: int = Field(
        500,
        ge=0,
        description="While more quotes already wait in Kafka (a backlog), batches are joined "
        "up to `STOCKAPP_BATCH_MAX` records, holding none longer than this; a caught-up worker "
        "processes each batch at once. `0`: no joining.",
    )
    batch_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="A batch is processed in parts of at most this many bytes of record "
        "values (4 MiB: some 40,000 quotes). Matters with packed records (many quotes each), "
        "whose batches of `STOCKAPP_BATCH_MAX` records could otherwise hold millions of "
        "quotes. Also the most bytes of applied batches (their record values and the symbol "
        "states they changed) that wait to be stored before the next batch is applied.",
    )
    state_cache_symbols: int = Field(
        10_000,
        ge=1,
        description="Decoded symbol states a worker keeps in memory (and every live one, "
        "whose watermark the timer moves each second); the least recently used others leave "
        "memory, those with a forming candle watched by a small entry, and come back from the "
        "table when needed.",
    )
    # One symbol's state, encoded, at most: a record of the state table's changelog, so well
    # under Kafka's 1 MB record limit (checked at start against the topic's max.message.bytes
    # and against the worst case the indicators, intervals and rules allow).
    state_max_bytes: int = Field(
        256 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="The most one symbol's encoded state (one record of the state table's "
        "changelog) may take, 64 KiB-64 MiB. A record that would pass it is dead-lettered. "
        "Checked at start against the changelog topic's `max.message.bytes` (the broker's "
        "`message.max.bytes` before it exists) and the producer's 1,000,000-byte request, and "
        "against the largest state the indicators, intervals, grace period and the rules' "
        "limits allow (about 201 KB with the defaults): either failing stops the worker in one "
        "line.",
    )
    max_symbols: int = Field(
        50_000,
        ge=1,
        le=10_000_000,
        description="Symbols one worker holds state for in its partitions; a quote of a new "
        "symbol past it is dead-lettered (known symbols go on). Each costs its state in the "
        "table (on disk with RocksDB, in memory with `STOCKAPP_TABLE_STORE=memory`: up to "
        "`STOCKAPP_STATE_MAX_BYTES` each, typically 13 KB) and a few hundred bytes of memory "
        "while it has a forming candle; size it for the symbols a worker may hold after taking "
        "over others' partitions.",
    )
    symbols_allowed: CsvList = Field(
        (),
        description="Comma-separated symbols, the only ones processed; others are "
        "dead-lettered. Empty: any.",
    )

    @field_validator("market_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone") from None
        return value

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        if not known_calendar(value):
            raise ValueError(f"is not a calendar pandas_market_calendars knows, nor {ALWAYS_OPEN}")
        return value

    @property
    def calendar(self) -> Calendar:
        """The trading calendar (tables/sessions.py), one per process and setting."""
        return trading_calendar(self.exchange, self.session_hours, self.market_timezone)

    @field_validator("intervals")
    @classmethod
    def _intervals(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        tz = info.data.get("market_timezone", "America/New_York")
        for name in value:
            parse_interval(name, tz)
        if not value or len(set(value)) != len(value):
            raise ValueError("must list distinct intervals")
        return value

    @field_validator("indicators")
    @classmethod
    def _indicators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.spec for d in parse_indicators(value))

    @property
    def indicator_set(self) -> tuple[IndicatorDef, ...]:
        """The configured indicators, in order (parsed once per distinct setting)."""
        return parse_indicators(self.indicators)

    @property
    def indicator_outputs(self) -> tuple[str, ...]:
        """The values each candle carries: Cassandra columns, API fields, rule series."""
        return outputs_of(self.indicator_set)

    @property
    def interval_ms(self) -> dict[str, int]:
        """Nominal length of each candle interval (a daily candle's is 24 h)."""
        return {name: parse_interval(name, self.market_timezone).ms for name in self.intervals}


class WorkerSettings(Section):
    """The Faust worker: its group, where and how it keeps its state, and the log level of
    every command."""

    app_id: str = Field(
        "stockapp",
        description="Faust application id: the consumer group and the prefix of changelog "
        "topics. Workers with the same id share the work.",
    )
    # The worker refuses to run otherwise (stockapp/faust_compat.py), and warns at every
    # start with it.
    allow_untested_faust: bool = Field(
        False,
        description="`true` (or `1`): `stockapp worker` runs on a faust-streaming or aiokafka "
        "version other than the ones `stockapp/faust_compat.py` was checked against (the "
        "versions setup.cfg pins), logging a WARNING naming them at every start. `false`: such "
        'a worker does not start, in one line. docs/operations.md, "Upgrading Faust or '
        'aiokafka".',
    )
    table_store: Literal["auto", "memory", "rocksdb"] = Field(
        "auto",
        description="Faust table store: `rocksdb` (on disk under the data dir; only the "
        "changelog tail is replayed at start), `memory` (the whole changelog is replayed), or "
        "`auto`: RocksDB where `rocksdict` is installed.",
    )
    # Computed when the settings are read (a checkout's and an installed package's differ).
    data_dir: Path = Field(
        default_factory=lambda: local_dir(".data", "data"),
        description="Worker state (RocksDB tables), in `worker-<web port>/` below it: workers "
        "on one machine never share files.",
        json_schema_extra={
            SHOWN_DEFAULT: "checkout: `<repo>/.data`; installed: `<user data>/data`"
        },
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        le=10,
        description="Other workers that keep a standby copy of each state partition (Faust's "
        "`table_standby_replicas`): a takeover after a worker dies then replays only the "
        "changelog's tail. `0` saves the copying; the new owner then reads the whole "
        "partition's changelog.",
    )
    rocksdb_memory_mb: int = Field(
        16,
        ge=4,
        le=65_536,
        description="Memory RocksDB may use for each state partition's database "
        "(`STOCKAPP_TABLE_STORE=rocksdb`): half block cache, half write buffers. A worker has "
        "one database per partition it owns or keeps a standby of, so this times that count "
        "bounds RocksDB's share (Faust's own defaults allow more than 2 GiB each). States are "
        "a few KiB per symbol; raise it when reads from disk show up in profiles.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The worker's event loop: `uvloop` (libuv; measured faster for Faust's "
        "per-record delivery, docs/performance.md; asyncio's where uvloop is not installed) or "
        "`asyncio`, Python's own. It decides over Faust's `--loop` and `FAUST_LOOP`.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "WARNING",
        description="`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`. For the worker it is "
        "Faust's log level; the other commands log `key=value` lines to stderr, each repeated "
        "line at most once per 10 s.",
    )


class SignalSettings(Section):
    """The signal rules and the webhook each signal is POSTed to (docs/signals.md)."""

    builtin_rules: bool = Field(
        True,
        description="Run the built-in signal rules (golden/death cross, MACD crosses, RSI "
        "70/30, Bollinger breaks, 20-candle breakouts; on 5m candles of every symbol). "
        "`false`: only users' rules.",
    )
    rules_refresh_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often each worker reloads the users' rules from Cassandra: a rule "
        "created or deleted through any worker is in force everywhere within this.",
    )
    # May hold a token, so never printed.
    signal_webhook_url: Secret = Field(
        "",
        description="An `https://` URL each signal is POSTed to (at least once, with "
        "`Idempotency-Key`, signed; redirects not followed). Empty: no webhook. May hold a "
        "token: never logged (replaced by `***`, as are its password and query). Needs "
        "`STOCKAPP_SIGNAL_WEBHOOK_SECRET`. docs/signals.md.",
    )
    signal_webhook_secret: Secret = Field(
        "",
        description="The HMAC-SHA256 key of each POST's `X-Stockapp-Signature` (at least 16 "
        "characters; e.g. `openssl rand -hex 32`). Required with a URL: without it the worker "
        "stops at start in one line. Never logged. How receivers verify: docs/signals.md.",
    )
    signal_webhook_secret_file: SecretFile = Field(
        None,
        description="A file holding the webhook's key (a mounted secret, read again for each "
        "batch of signals), used when `STOCKAPP_SIGNAL_WEBHOOK_SECRET` is empty.",
    )
    # http:// sends signals and signatures in the clear.
    signal_webhook_allow_http: bool = Field(
        False,
        description="`true` accepts an `http://` webhook URL (signals and signatures in the "
        "clear: a receiver on loopback or a network you trust). Otherwise an `http://` URL "
        "stops the worker at start.",
    )
    signal_webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Time allowed for one POST."
    )
    signal_webhook_tries: int = Field(
        5,
        ge=1,
        le=100,
        description="POSTs of one signal before it goes to `STOCKAPP_TOPIC_SIGNALS_DLQ` (a "
        "3xx, or a 4xx other than 408/425/429, goes there at once). Backoff 0.5 s, doubling, "
        "at most 30 s.",
    )

    @field_validator("signal_webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if value and not _web_url(value):
            raise ValueError("must be an https:// URL with a host (or http://, when allowed)")
        return value

    @property
    def signal_webhook_signing_key(self) -> str:
        """The webhook's HMAC key (from the variable, else the file); empty: none."""
        return _secret(self.signal_webhook_secret, self.signal_webhook_secret_file)

    def _check_webhook(self) -> None:
        """A webhook is signed, and over TLS unless allowed otherwise. The messages never quote
        the URL (it may hold a token) or the secret."""
        key = self.signal_webhook_signing_key
        if key and len(key) < MIN_WEBHOOK_SECRET_CHARS:
            raise ValueError(
                f"STOCKAPP_SIGNAL_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_CHARS} "
                "characters (e.g. `openssl rand -hex 32`)"
            )
        if not self.signal_webhook_url:
            return
        if not key:
            raise ValueError(
                "STOCKAPP_SIGNAL_WEBHOOK_URL is set without STOCKAPP_SIGNAL_WEBHOOK_SECRET (or "
                "STOCKAPP_SIGNAL_WEBHOOK_SECRET_FILE): every POST is signed with it for the "
                "receiver to verify (docs/signals.md)"
            )
        if _scheme(self.signal_webhook_url) == "http" and not self.signal_webhook_allow_http:
            raise ValueError(
                "STOCKAPP_SIGNAL_WEBHOOK_URL is http://: signals would cross the network in the "
                "clear; use https://, or set STOCKAPP_SIGNAL_WEBHOOK_ALLOW_HTTP=true for a "
                "receiver on loopback or a network you trust"
            )


class SourceSettings(Section):
    """Where `stockapp produce` gets quotes from, besides the simulator and CSV files
    (docs/sources.md)."""

    # The key's variable is the name Alpha Vantage's own docs use.
    alpha_vantage_api_key: Annotated[
        Secret, Field(validation_alias=AliasChoices("ALPHA_VANTAGE_API_KEY"))
    ] = Field(
        "",
        description="API key for `stockapp produce --source alphavantage`. Never logged or "
        "printed.",
    )
    alpha_vantage_url: str = Field(
        "https://www.alphavantage.co/query", description="Alpha Vantage endpoint."
    )
    # Finnhub and Alpaca: the variables their own tools read, or files (mounted secrets).
    finnhub_api_key: Annotated[Secret, Field(validation_alias=AliasChoices("FINNHUB_API_KEY"))] = (
        Field("", description="API key for `--source finnhub`. Never logged or printed.")
    )
    finnhub_api_key_file: SecretFile = Field(
        None, description="A file holding the Finnhub key, used when FINNHUB_API_KEY is not set."
    )
    finnhub_ws_url: str = Field(
        "wss://ws.finnhub.io",
        description="Finnhub's trades WebSocket; the key is added as `?token=`.",
    )
    alpaca_api_key_id: Annotated[
        Secret, Field(validation_alias=AliasChoices("APCA_API_KEY_ID"))
    ] = Field("", description="Alpaca key id for `--source alpaca`. Never logged or printed.")
    alpaca_api_key_id_file: SecretFile = Field(
        None, description="A file holding the Alpaca key id, used when APCA_API_KEY_ID is not set."
    )
    alpaca_api_secret_key: Annotated[
        Secret, Field(validation_alias=AliasChoices("APCA_API_SECRET_KEY"))
    ] = Field("", description="Alpaca secret key. Never logged or printed.")
    alpaca_api_secret_key_file: SecretFile = Field(
        None,
        description="A file holding the Alpaca secret key, used when APCA_API_SECRET_KEY is not "
        "set.",
    )
    alpaca_ws_url: str = Field(
        "wss://stream.data.alpaca.markets/v2",
        description="Alpaca's market-data stream; the feed (`iex`, `sip`) is added as a path.",
    )
    alpaca_data_url: str = Field(
        "https://data.alpaca.markets",
        description="Alpaca's market-data REST API (historical bars for `backfill`).",
    )
    feed_heartbeat_seconds: float = Field(
        20.0,
        gt=0,
        description="Live feeds: a WebSocket ping this often; a connection whose pong does not "
        "come within half of it is dropped and made again.",
    )
    feed_idle_seconds: float = Field(
        60.0,
        gt=0,
        description="Finnhub: a connection that sends nothing at all (not even its pings) for this "
        "long is dropped and made again.",
    )
    feed_backoff_max_seconds: float = Field(
        60.0,
        gt=0,
        description="Live feeds: the longest wait between reconnection attempts (exponential "
        "from 1 s, with full jitter).",
    )

    @property
    def finnhub_key(self) -> str:
        return _secret(self.finnhub_api_key, self.finnhub_api_key_file)

    @property
    def alpaca_key_id(self) -> str:
        return _secret(self.alpaca_api_key_id, self.alpaca_api_key_id_file)

    @property
    def alpaca_secret(self) -> str:
        return _secret(self.alpaca_api_secret_key, self.alpaca_api_secret_key_file)


class WebSettings(Section):
    """The worker's web server: where it listens, what it answers and the limits it puts on
    clients (docs/web.md)."""

    web_host: str = Field(
        "127.0.0.1",
        description="Address the worker's web server binds to (and advertises, unless "
        "`STOCKAPP_WEB_ADVERTISE` says otherwise).",
    )
    # Advertising 0.0.0.0 would make every worker believe it owns every symbol.
    web_advertise: str = Field(
        "",
        description="The address other workers use to reach this one (forwarding a symbol's "
        "request to its owner, relaying its live feed; Faust's group metadata carries it). "
        "Empty: `STOCKAPP_WEB_HOST`. `auto`: the address this machine's host name resolves to "
        "(a container's own IP), for workers that bind `0.0.0.0`: advertising `0.0.0.0` makes "
        "every worker believe it owns every symbol.",
    )
    web_port: Port = Field(
        6066,
        description="Worker web server port (Faust's default). Give each worker on one "
        "machine its own.",
    )
    cors_origins: CsvList = Field(
        (),
        description="Comma-separated origins (e.g. `http://localhost:5173`) allowed to call "
        "the API from another origin: their `OPTIONS` preflights are answered (methods `GET, "
        "POST, DELETE`, headers `Authorization, Content-Type`) and the answers carry "
        "`Access-Control-Allow-Origin`; other origins get no CORS header. Empty: same origin "
        "only. `*` allows any.",
    )
    # A page on another site whose name resolves to this address (DNS rebinding) sends its
    # own name and is refused.
    allowed_hosts: CsvList = Field(
        ("127.0.0.1", "localhost", "::1"),
        description="Host names the web server answers to (the `Host` header); any other name "
        "gets 403, which is what a page sends after rebinding its DNS name to the worker's "
        "address. IP literals and `STOCKAPP_WEB_HOST` are always accepted; `*` accepts any. "
        "List the names users and the reverse proxy use (docs/security.md).",
    )
    api_max_request_bytes: int = Field(
        65_536,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Request bodies above this are refused with 413 before they are read.",
    )
    # stockapp/web/ratelimit.py.
    api_rate_per_client: float = Field(
        20.0,
        ge=0,
        description="Expensive API queries per client address: tokens per second "
        "(`/api/symbols` and `/api/quote/...` cost 1, `/api/candles/...` 1 per 500 candles "
        "asked); beyond, 429 with `Retry-After`. `0`: no limit.",
    )
    api_rate_burst: float = Field(
        100.0,
        ge=1,
        description="The tokens a client may spend at once before the rate applies.",
    )
    api_rate_exempt: CsvList = Field(
        ("127.0.0.1", "::1"),
        description="Client addresses not rate-limited (local tools and benchmarks). Behind a "
        "reverse proxy on the same machine every client has its address: limit in the proxy, "
        "or set this to an address nobody uses. Requests one worker forwards to another are "
        "counted where they arrived when signed with `STOCKAPP_WORKER_SECRET`.",
    )
    live_max_connections: int = Field(
        1000,
        ge=1,
        description="Live WebSocket connections one worker serves (`/api/live/...` and "
        "`/api/signals/live` together, relayed ones included); more get 503.",
    )
    live_max_per_client: int = Field(
        20,
        ge=1,
        description="Live WebSocket connections from one client address (both live views "
        "together, counted before the handshake); more get 429. A relay another worker signed "
        "counts where its client arrived. Behind a reverse proxy every client has the proxy's "
        "address: raise it there, and limit per client in the proxy.",
    )
    live_send_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A live WebSocket client (`/api/live/...`) that does not take one "
        "change's messages within this time is disconnected, as is one that falls 256 changes "
        'behind (docs/web.md, "Slow clients").',
    )
    candle_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        le=2**40,
        description="Closed candles a worker keeps in memory for `/api/candles` of the symbols "
        "it owns, at most this many bytes (the memory their encoded JSON takes); least recently "
        'read (symbol, interval) first out. `0`: none (docs/web.md, "Candle cache").',
    )
    candle_cache_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="A cached history range is read from Cassandra again after this long: how "
        "long candles written by another process into a range already served (`stockapp "
        "backfill` while workers run) may stay unseen. Candles the worker closes itself are "
        "added as they are stored.",
    )
    # Computed when the settings are read (a checkout's and an installed package's differ).
    frontend_dist: Path = Field(
        default_factory=_frontend_dist,
        description="The built front end served at `/`: a checkout's own build (`make "
        "install`), or the copy a wheel carries (`stockapp/web/frontend/` in site-packages).",
        json_schema_extra={
            SHOWN_DEFAULT: "checkout: `<repo>/frontend/dist`; installed: inside the package"
        },
    )

    @property
    def web_loopback(self) -> bool:
        """Whether the web server binds to a loopback address: reachable from this machine
        only."""
        host = self.web_host.strip("[]").lower()
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name: whatever it resolves to, other machines may reach it

    @property
    def web_advertised(self) -> str:
        """The host part of this worker's URL as other workers reach it."""
        if self.web_advertise == "auto":
            import socket

            return socket.gethostbyname(socket.gethostname())
        return self.web_advertise or self.web_host


class WebSecuritySettings(Section):
    """Who may use the worker's web server: the tokens of readers and writers, the secret
    workers sign forwarded requests with, and whether an exposed worker may go without
    (docs/security.md)."""

    api_token: Secret = Field(
        "",
        description="A bearer token required on `/api/*`, the live WebSockets (or a ticket "
        "from `POST /api/ws-ticket`), `/stats`, `/metrics` and `/debug/*`; `/health`, `/ready` "
        "and the page stay open. Empty: no token (then a worker bound to a non-loopback "
        "address does not start unless `STOCKAPP_ALLOW_OPEN=true`). At least 16 printable "
        'ASCII characters without spaces; only whitespace is an error, not "no token". Never '
        "logged. All workers of an app id need the same one.",
    )
    api_token_file: SecretFile = Field(
        None,
        description="A file holding the token (a mounted secret), read at start; used when "
        "`STOCKAPP_API_TOKEN` is empty.",
    )
    # Without it, writes are refused whenever a token is set or the worker is exposed
    # (stockapp/web/guard.py).
    admin_token: Secret = Field(
        "",
        description="The bearer token that creating and deleting rules (`POST /api/rules`, "
        "`DELETE /api/rules/{name}`) need; it reads too. Empty: writes are refused (403 naming "
        "it) whenever an API token is set or the worker binds a non-loopback address, and open "
        "only on a loopback worker with no token at all. Same rules as the API token (16 "
        "characters at least), and must differ from it. Never logged.",
    )
    admin_token_file: SecretFile = Field(
        None,
        description="A file holding the admin token (a mounted secret), used when "
        "`STOCKAPP_ADMIN_TOKEN` is empty.",
    )
    worker_secret: Secret = Field(
        "",
        description="What workers sign the requests they forward to each other with "
        "(`X-Stockapp-Routed`, an HMAC of method, path and expiry): only a signed request "
        "skips the rate limit and the per-client live limit, and a wrong or expired signature "
        "gets 403. Empty: the header is not trusted (requests between workers are limited "
        "like any other's; it only stops a request from being forwarded twice). Set it, the "
        "same on every worker, when there is more than one. 16 characters at least, different "
        "from both tokens. Never logged.",
    )
    worker_secret_file: SecretFile = Field(
        None,
        description="A file holding the worker secret (a mounted secret), used when "
        "`STOCKAPP_WORKER_SECRET` is empty.",
    )
    allow_open: bool = Field(
        False,
        description="`true`: a worker bound to a non-loopback `STOCKAPP_WEB_HOST` may start "
        "without `STOCKAPP_API_TOKEN`, serving the API to anyone who reaches it (writes stay "
        "refused without an admin token). `false`: it refuses to start, in one line.",
    )

    @field_validator("api_token", "admin_token", "worker_secret", mode="before")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        # Before str_strip_whitespace turns "   " into "", which would mean "no token": a
        # token that is only whitespace is a mistake, not a wish for an open API.
        if isinstance(value, str) and value and not value.strip():
            raise ValueError("is only whitespace: set a real token, or leave the variable unset")
        return value

    @property
    def api_secret(self) -> str:
        """The API token (from STOCKAPP_API_TOKEN, else the file); empty: none required."""
        return _secret(self.api_token, self.api_token_file)

    @property
    def admin_secret(self) -> str:
        """The admin token (writes); empty: none set."""
        return _secret(self.admin_token, self.admin_token_file)

    @property
    def inter_worker_secret(self) -> str:
        """The key workers sign forwarded requests with; empty: none set."""
        return _secret(self.worker_secret, self.worker_secret_file)

    def _check_web_secrets(self) -> None:
        """Each web secret long enough and sendable in a header; no two the same (a viewer
        who knows the API token must not be able to write rules or sign as a worker)."""
        seen: dict[str, str] = {}
        for field, file_field in WEB_SECRETS:
            value = _secret(getattr(self, field), getattr(self, file_field))
            if not value:
                continue
            name = env_name(type(self), field if getattr(self, field) else file_field)
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{name} must hold at least {MIN_SECRET_LENGTH} characters "
                    "(e.g. openssl rand -hex 32)"
                )
            if not all("!" <= c <= "~" for c in value):
                raise ValueError(
                    f"{name} must hold printable ASCII without spaces (it goes in an HTTP header)"
                )
            for other, other_value in seen.items():
                if value == other_value:
                    raise ValueError(f"{env_name(type(self), field)} must differ from {other}")
            seen[env_name(type(self), field)] = value


# The sections, by title, in the order docs/configuration.md lists them (stockapp/settings_doc.py).
SECTIONS: dict[str, type[Section]] = {
    "Kafka": KafkaSettings,
    "Topics": TopicSettings,
    "Cassandra": CassandraSettings,
    "Stream processing": StreamSettings,
    "Worker": WorkerSettings,
    "Signals": SignalSettings,
    "Sources": SourceSettings,
    "Web server": WebSettings,
    "Web security": WebSecuritySettings,
}


# The bases are listed last section first: pydantic orders an inheriting model's fields from
# its last base's to its first's, and the fields' order is the one they are validated in (the
# first wrong one is the one reported). tests/unit/test_settings_doc.py checks it is SECTIONS'.
class Settings(
    WebSecuritySettings,
    WebSettings,
    SourceSettings,
    SignalSettings,
    WorkerSettings,
    StreamSettings,
    CassandraSettings,
    TopicSettings,
    KafkaSettings,
):
    """Every setting of the program, each as ``settings.<name>``: the sections together, and
    the checks and values that span them."""

    @model_validator(mode="after")
    def _security(self) -> Settings:
        """Security settings that contradict each other fail at start, not at first use."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_secret
        ):
            raise ValueError(
                f"STOCKAPP_KAFKA_SECURITY_PROTOCOL={protocol} needs STOCKAPP_KAFKA_SASL_USERNAME "
                "and STOCKAPP_KAFKA_SASL_PASSWORD (or STOCKAPP_KAFKA_SASL_PASSWORD_FILE)"
            )
        tls_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if not protocol.endswith("SSL") and any(getattr(self, f) for f in tls_files):
            used = next(f for f in tls_files if getattr(self, f))
            raise ValueError(
                f"{_variable(used)} is set but STOCKAPP_KAFKA_SECURITY_PROTOCOL={protocol} does "
                "not use TLS (SSL or SASL_SSL does)"
            )
        tls_files = ("cassandra_ssl_cafile", "cassandra_ssl_certfile", "cassandra_ssl_keyfile")
        if not self.cassandra_ssl and any(getattr(self, f) for f in tls_files):
            used = next(f for f in tls_files if getattr(self, f))
            raise ValueError(f"{_variable(used)} is set but STOCKAPP_CASSANDRA_SSL is not true")
        for prefix in ("kafka_ssl", "cassandra_ssl"):
            if getattr(self, f"{prefix}_keyfile") and not getattr(self, f"{prefix}_certfile"):
                raise ValueError(
                    f"{_variable(prefix + '_keyfile')} is set without "
                    f"{_variable(prefix + '_certfile')} (the client certificate it belongs to)"
                )
        if self.cassandra_secret and not self.cassandra_username:
            raise ValueError(
                "STOCKAPP_CASSANDRA_PASSWORD is set without STOCKAPP_CASSANDRA_USERNAME"
            )
        self._check_web_secrets()
        return self

    @model_validator(mode="after")
    def _sessions(self) -> Settings:
        """A calendar that cannot give what the settings ask (extended hours of an exchange
        that knows none) fails at start."""
        try:
            self.calendar  # noqa: B018 - built to be checked
        except ValueError as exc:
            raise ValueError(f"STOCKAPP_EXCHANGE={self.exchange}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _webhook_settings(self) -> Settings:
        self._check_webhook()
        return self

    def require_web_protection(self) -> None:
        """A worker others can reach serves the API only with a token, or when told to serve
        it openly (STOCKAPP_ALLOW_OPEN=true)."""
        if self.web_loopback or self.api_secret or self.allow_open:
            return
        raise SettingsError(
            f"STOCKAPP_WEB_HOST={self.web_host} is reachable from other machines and "
            "STOCKAPP_API_TOKEN (or STOCKAPP_API_TOKEN_FILE) is not set: set a token, or "
            "STOCKAPP_ALLOW_OPEN=true to serve the API to anyone who reaches it"
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value set, for redacting them from text that might quote one."""
        values = (
            self.api_secret,
            self.admin_secret,
            self.inter_worker_secret,
            self.kafka_sasl_secret,
            self.kafka_ssl_key_secret,
            self.cassandra_secret,
            self.cassandra_ssl_key_secret,
            self.alpha_vantage_api_key,
            self.finnhub_key,
            self.alpaca_key_id,
            self.alpaca_secret,
            self.signal_webhook_signing_key,
            *_url_secrets(self.signal_webhook_url),
        )
        # Longest first: a URL is replaced whole before its query could be, which would leave
        # the rest of it (a token in its path) unmatched.
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))

    @property
    def worker_dir(self) -> Path:
        """This worker's state directory: one per web port, so workers on one machine never
        open the same RocksDB files."""
        return self.data_dir / f"worker-{self.web_port}"


def _web_url(value: str) -> bool:
    from yarl import URL

    try:
        url = URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _scheme(value: str) -> str:
    """The URL's scheme in lower case (``HTTP://`` is plain http too)."""
    from yarl import URL

    return URL(value).scheme


def _url_secrets(value: str) -> tuple[str, ...]:
    """The forms a webhook URL may be quoted in (as given, as a client normalises it), and
    the parts of it that are credentials on their own: a password and a query string."""
    if not value:
        return ()
    from yarl import URL

    try:
        url = URL(value)
    except ValueError:
        return (value,)
    return (value, str(url), url.human_repr(), url.password or "", url.query_string)


def _secret(value: str, file: Path | None) -> str:
    """A secret from its variable, else from its file (a mounted secret, read at each use so a
    rotated file is picked up); empty if neither is set."""
    if value:
        return value
    if file is not None:
        return file.read_text().strip()
    return ""


def env_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable a field of ``model`` is read from."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return ENV_PREFIX + field.upper()


def _variable(field: str) -> str:
    return env_name(Settings, field)


def _one_line(error: ErrorDetails, model: type[BaseSettings] = Settings) -> str:
    """The first problem, as ``VARIABLE=value what is wrong``."""
    if not error["loc"]:
        # A check across several settings: its message names them. Its input is every
        # setting, secrets included, so none of it is shown.
        return str((error.get("ctx") or {}).get("error") or error["msg"]).removeprefix(
            "Value error, "
        )
    field = str(error["loc"][0])
    known = field in model.model_fields
    name = env_name(model, field) if known else field
    value = error.get("input")
    kind, ctx = error["type"], error.get("ctx") or {}
    if known and model.model_fields[field].repr is False:
        shown = "<hidden>"
    elif isinstance(value, tuple):
        shown = repr(",".join(value))
    elif kind in ("greater_than_equal", "less_than_equal"):
        shown = str(value)
    else:
        shown = repr(value)
    if kind in ("int_parsing", "int_from_float"):
        what = "is not an integer"
    elif kind == "float_parsing":
        what = "is not a number"
    elif kind == "bool_parsing":
        what = "must be true or false"
    elif kind == "literal_error":
        what = f"must be one of {ctx.get('expected', '').replace(' or ', ', ')}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(model, field)
        what = f"is outside {low}..{high}" if high is not None else f"must be at least {low}"
    else:
        what = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return f"{name}={shown} {what}"


def _bounds(model: type[BaseSettings], field: str) -> tuple[Any, Any]:
    low = high = None
    for item in model.model_fields[field].metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    return low, high


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def read_settings(model: type[AnySettings]) -> AnySettings:
    """``model`` read from the environment now; a bad value is a SettingsError naming the
    variable, in one line."""
    try:
        return model()
    except ValidationError as exc:
        raise SettingsError(_one_line(exc.errors()[0], model)) from None


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing variables)."""
    return read_settings(Settings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
