"""All configuration, read from environment variables with local defaults.

Each setting is declared once, below, with its default and its bounds (pydantic-settings reads
``STOCKAPP_<NAME>``); every one is documented in docs/configuration.md (one table). Nothing else
in the project reads ``os.environ`` for configuration: import :func:`get_settings` instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stockapp.errors import StockappError
from stockapp.tables.indicators.registry import (
    DEFAULT_SPEC,
    IndicatorDef,
    outputs_of,
    parse_indicators,
)
from stockapp.tables.intervals import parse_interval

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


def _local_dir(in_checkout: str, installed: str) -> Path:
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


# Shorter keys are guessable offline from one signed POST.
MIN_WEBHOOK_SECRET_CHARS = 16

# A comma-separated list in the environment ("a, b,c"), a tuple in the program.
CsvList = Annotated[tuple[str, ...], NoDecode]
Port = Annotated[int, Field(ge=1, le=65535)]
Secret = Annotated[str, Field(repr=False)]  # never printed
# The shortest API token, admin token or worker secret accepted: anything shorter can be
# guessed over the network (docs/security.md).
MIN_SECRET_LENGTH = 16
# The web server's secrets: (variable field, file field, what it guards).
WEB_SECRETS = (
    ("api_token", "api_token_file"),
    ("admin_token", "admin_token_file"),
    ("worker_secret", "worker_secret_file"),
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # an empty variable means the default
        str_strip_whitespace=True,
        frozen=True,
        extra="ignore",
    )

    # Kafka
    kafka_bootstrap: CsvList = ("127.0.0.1:9092",)
    # How clients reach the brokers (Kafka's security.protocol); docs/security.md.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: Secret = ""
    kafka_sasl_password_file: Path | None = None
    # TLS: the CA that signed the brokers' certificates (empty: the system's trust store), and
    # a client certificate for brokers that ask for one.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: Secret = ""
    kafka_ssl_key_password_file: Path | None = None
    kafka_ssl_check_hostname: bool = True
    # Cassandra
    cassandra_hosts: CsvList = ("127.0.0.1",)
    cassandra_port: Port = 9042
    cassandra_keyspace: str = "stock_data"
    cassandra_replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    cassandra_username: str = ""
    cassandra_password: Secret = ""
    cassandra_password_file: Path | None = None
    # TLS to Cassandra (client_encryption_options): the CA (empty: the system's trust store)
    # and a client certificate for nodes that require one.
    cassandra_ssl: bool = False
    cassandra_ssl_cafile: Path | None = None
    cassandra_ssl_certfile: Path | None = None
    cassandra_ssl_keyfile: Path | None = None
    cassandra_ssl_key_password: Secret = ""
    cassandra_ssl_key_password_file: Path | None = None
    cassandra_ssl_check_hostname: bool = True
    cassandra_connect_timeout: Annotated[float, Field(ge=1)] = 5.0
    # "Durable" must mean durable on a real cluster: a quorum of the local DC's replicas
    # acknowledges every write (with replication factor 1, as locally, that is the one node).
    cassandra_consistency: Literal["ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "ALL"] = (
        "LOCAL_QUORUM"
    )
    cassandra_local_dc: str = "datacenter1"  # the local stack's (SimpleSnitch) data centre
    # Topics (docs/streaming.md)
    topic_quotes: str = "quotes.raw"
    topic_candles: str = "candles"
    topic_late: str = "quotes.late"
    topic_dlq: str = "quotes.dlq"
    topic_signals: str = "signals"
    topic_signals_dlq: str = "signals.dlq"
    quotes_partitions: Annotated[int, Field(ge=1, le=10_000)] = 8
    topic_replication: Annotated[int, Field(ge=1, le=100)] = 1
    # Signals (docs/signals.md)
    builtin_rules: bool = True
    rules_refresh_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # Where each signal is POSTed (empty: nowhere). May hold a token, so never printed.
    signal_webhook_url: Secret = ""
    # The HMAC key each POST is signed with (required with a URL; at least 16 characters), or
    # a file holding it (a mounted secret). Receivers verify with it (docs/signals.md).
    signal_webhook_secret: Secret = ""
    signal_webhook_secret_file: Path | None = None
    # http:// sends signals and signatures in the clear: only for a receiver on loopback or a
    # network you trust.
    signal_webhook_allow_http: bool = False
    signal_webhook_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5.0
    signal_webhook_tries: Annotated[int, Field(ge=1, le=100)] = 5
    # Candles
    intervals: CsvList = ("1m", "5m", "15m", "1h", "1d")
    market_timezone: str = "America/New_York"
    # Indicators and their parameters (docs/configuration.md): kind[:param...], comma-separated.
    indicators: CsvList = DEFAULT_SPEC
    grace_seconds: Annotated[float, Field(ge=0)] = 5.0
    idle_close_seconds: Annotated[float, Field(ge=0.5)] = 10.0
    max_future_skew_seconds: Annotated[float, Field(ge=0)] = 300.0
    store_raw_quotes: bool = True
    # Alpha Vantage (the key's variable is the name Alpha Vantage's own docs use)
    alpha_vantage_api_key: Annotated[
        Secret, Field(validation_alias=AliasChoices("ALPHA_VANTAGE_API_KEY"))
    ] = ""
    alpha_vantage_url: str = "https://www.alphavantage.co/query"
    # Throughput
    batch_max: Annotated[int, Field(ge=1)] = 5000
    batch_within_ms: Annotated[int, Field(ge=1)] = 50
    batch_join_ms: Annotated[int, Field(ge=0)] = 500
    batch_max_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    cassandra_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    state_cache_symbols: Annotated[int, Field(ge=1)] = 10_000
    # One symbol's state, encoded, at most: a record of the state table's changelog, so well
    # under Kafka's 1 MB record limit (checked at start against the topic's max.message.bytes
    # and against the worst case the indicators, intervals and rules allow).
    state_max_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024 * 1024)] = 256 * 1024
    # Symbols one worker holds state for; a quote of a new symbol past it is dead-lettered.
    max_symbols: Annotated[int, Field(ge=1, le=10_000_000)] = 50_000
    # The only symbols processed (empty: any); quotes of others are dead-lettered.
    symbols_allowed: CsvList = ()
    standby_replicas: Annotated[int, Field(ge=0, le=10)] = 1
    rocksdb_memory_mb: Annotated[int, Field(ge=4, le=65_536)] = 16
    # How long a silent worker keeps its partitions before the group gives them to others:
    # the floor of a takeover after a crash (docs/operations.md has measured times).
    kafka_session_timeout_seconds: Annotated[float, Field(ge=6, le=300)] = 60.0
    # Faust worker and its web server
    app_id: str = "stockapp"
    # Run on a faust-streaming or aiokafka version stockapp/faust_compat.py was not checked
    # against (the worker refuses to otherwise, and warns at every start with it).
    allow_untested_faust: bool = False
    web_host: str = "127.0.0.1"
    # The address other workers (forwarding, live relay) and Faust's group metadata use for
    # this worker. Empty: web_host. "auto": this machine's address as its host name resolves
    # (a container's own IP), for workers that bind 0.0.0.0: advertising 0.0.0.0 would make
    # every worker believe it owns every symbol.
    web_advertise: str = ""
    web_port: Port = 6066
    cors_origins: CsvList = ()
    # Host names the web server answers to (the Host header): a page on another site whose
    # name resolves to this address (DNS rebinding) sends its own name and is refused. The
    # worker's own web_host is always allowed; "*" allows any.
    allowed_hosts: CsvList = ("127.0.0.1", "localhost", "::1")
    # A bearer token required on /api/*, the live WebSocket, /stats, /metrics and /debug/*
    # (empty: no token); or a file holding it (a mounted secret).
    api_token: Secret = ""
    api_token_file: Path | None = None
    # A second token, required to write (POST/DELETE /api/rules...): viewers who hold the API
    # token may read, not change the rules. Without it, writes are refused whenever a token
    # is set or the worker is exposed (stockapp/web/guard.py).
    admin_token: Secret = ""
    admin_token_file: Path | None = None
    # What workers sign the requests they forward to each other with (an HMAC of the method,
    # path and expiry): only a valid signature skips the limits meant for clients. Empty: the
    # routing header is not trusted. The same on every worker of the app id.
    worker_secret: Secret = ""
    worker_secret_file: Path | None = None
    # A worker bound to an address other machines reach (not loopback) refuses to start
    # without STOCKAPP_API_TOKEN, unless this says that an open API is meant.
    allow_open: bool = False
    # Request bodies above this are refused (413); the API takes none larger.
    api_max_request_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65_536
    # Expensive API queries per client address: tokens per second and the burst (a request
    # costs 1, candles 1 per 500 asked; stockapp/web/ratelimit.py). 0: no limit. Addresses
    # in api_rate_exempt are not limited (local tools, the other workers).
    api_rate_per_client: Annotated[float, Field(ge=0)] = 20.0
    api_rate_burst: Annotated[float, Field(ge=1)] = 100.0
    api_rate_exempt: CsvList = ("127.0.0.1", "::1")
    # Live WebSocket connections this worker serves, in all and from one client address.
    live_max_connections: Annotated[int, Field(ge=1)] = 1000
    live_max_per_client: Annotated[int, Field(ge=1)] = 20
    # A live WebSocket client that takes longer than this to accept one change is dropped.
    live_send_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Computed when the settings are read (defaults differ for a checkout and an installed
    # package; docs/configuration.md).
    frontend_dist: Path = Field(default_factory=_frontend_dist)
    table_store: Literal["auto", "memory", "rocksdb"] = "auto"
    data_dir: Path = Field(default_factory=lambda: _local_dir(".data", "data"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    # Local stack started by `make up` (ignored when pointing at external servers; a tool of
    # a checkout: stockapp/devstack)
    stack_dir: Path = Field(default_factory=lambda: _local_dir(".stack", "stack"))
    run_dir: Path = Field(default_factory=lambda: _local_dir(".run", "run"))
    stack_java_home: str = ""
    stack_kafka_controller_port: Port = 9093
    stack_kafka_heap: str = "512m"
    stack_cassandra_storage_port: Port = 7000
    stack_cassandra_heap: str = "1g"
    stack_start_timeout: Annotated[int, Field(ge=10)] = 180
    # A stack whose servers require credentials and TLS (docs/security.md): Kafka gains a
    # SASL_SSL and an SSL (client certificate) listener, Cassandra PasswordAuthenticator and
    # client encryption; `python -m stockapp.devstack up` writes the client settings to
    # <stack_dir>/secure.env.
    stack_secure: bool = False
    stack_kafka_sasl_ssl_port: Port = 9094
    stack_kafka_ssl_port: Port = 9095

    @field_validator(
        "kafka_bootstrap",
        "cassandra_hosts",
        "intervals",
        "indicators",
        "cors_origins",
        "allowed_hosts",
        "api_rate_exempt",
        "symbols_allowed",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("is empty")
        for address in value:
            host_port(address, 9092)
        return value

    @field_validator("api_token", "admin_token", "worker_secret", mode="before")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        # Before str_strip_whitespace turns "   " into "", which would mean "no token": a
        # token that is only whitespace is a mistake, not a wish for an open API.
        if isinstance(value, str) and value and not value.strip():
            raise ValueError("is only whitespace: set a real token, or leave the variable unset")
        return value

    @field_validator(
        "api_token_file",
        "admin_token_file",
        "worker_secret_file",
        "kafka_sasl_password_file",
        "kafka_ssl_key_password_file",
        "cassandra_password_file",
        "signal_webhook_secret_file",
    )
    @classmethod
    def _secret_file(cls, value: Path | None) -> Path | None:
        if value is not None and not (_readable(value) and value.read_text().strip()):
            raise ValueError("is not a readable file holding the secret")
        return value

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "cassandra_ssl_cafile",
        "cassandra_ssl_certfile",
        "cassandra_ssl_keyfile",
    )
    @classmethod
    def _pem_file(cls, value: Path | None) -> Path | None:
        if value is not None and not _readable(value):
            raise ValueError("is not a readable file")
        return value

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
    def _webhook_settings(self) -> Settings:
        """A webhook is signed, and over TLS unless allowed otherwise. The messages never quote
        the URL (it may hold a token) or the secret."""
        key = self.signal_webhook_signing_key
        if key and len(key) < MIN_WEBHOOK_SECRET_CHARS:
            raise ValueError(
                f"STOCKAPP_SIGNAL_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_CHARS} "
                "characters (e.g. `openssl rand -hex 32`)"
            )
        if not self.signal_webhook_url:
            return self
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
        return self

    @property
    def signal_webhook_signing_key(self) -> str:
        """The webhook's HMAC key (from the variable, else the file); empty: none."""
        return _secret(self.signal_webhook_secret, self.signal_webhook_secret_file)

    def _check_web_secrets(self) -> None:
        """Each web secret long enough and sendable in a header; no two the same (a viewer
        who knows the API token must not be able to write rules or sign as a worker)."""
        seen: dict[str, str] = {}
        for field, file_field in WEB_SECRETS:
            value = _secret(getattr(self, field), getattr(self, file_field))
            if not value:
                continue
            name = _variable(field if getattr(self, field) else file_field)
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
                    raise ValueError(f"{_variable(field)} must differ from {other}")
            seen[_variable(field)] = value

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
    def kafka_sasl_secret(self) -> str:
        return _secret(self.kafka_sasl_password, self.kafka_sasl_password_file)

    @property
    def kafka_ssl_key_secret(self) -> str:
        return _secret(self.kafka_ssl_key_password, self.kafka_ssl_key_password_file)

    @property
    def cassandra_secret(self) -> str:
        return _secret(self.cassandra_password, self.cassandra_password_file)

    @property
    def cassandra_ssl_key_secret(self) -> str:
        return _secret(self.cassandra_ssl_key_password, self.cassandra_ssl_key_password_file)

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
            self.signal_webhook_signing_key,
            *_url_secrets(self.signal_webhook_url),
        )
        # Longest first: a URL is replaced whole before its query could be, which would leave
        # the rest of it (a token in its path) unmatched.
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))

    @field_validator("market_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone") from None
        return value

    @field_validator("signal_webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if value and not _web_url(value):
            raise ValueError("must be an https:// URL with a host (or http://, when allowed)")
        return value

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
    def web_advertised(self) -> str:
        """The host part of this worker's URL as other workers reach it."""
        if self.web_advertise == "auto":
            import socket

            return socket.gethostbyname(socket.gethostname())
        return self.web_advertise or self.web_host

    @property
    def kafka_broker_url(self) -> str:
        """Faust's broker URL form: ``kafka://host:port;host:port``."""
        return "kafka://" + ";".join(self.kafka_bootstrap)

    @property
    def worker_dir(self) -> Path:
        """This worker's state directory: one per web port, so workers on one machine never
        open the same RocksDB files."""
        return self.data_dir / f"worker-{self.web_port}"

    @property
    def interval_ms(self) -> dict[str, int]:
        """Nominal length of each candle interval (a daily candle's is 24 h)."""
        return {name: parse_interval(name, self.market_timezone).ms for name in self.intervals}

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return host_port(self.kafka_bootstrap[0], 9092)


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


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return path.is_file()
    except OSError:
        return False


def _secret(value: str, file: Path | None) -> str:
    """A secret from its variable, else from its file (a mounted secret, read at each use so a
    rotated file is picked up); empty if neither is set."""
    if value:
        return value
    if file is not None:
        return file.read_text().strip()
    return ""


def _variable(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else ENV_PREFIX + field.upper()


def _one_line(error: dict) -> str:
    """The first problem, as ``VARIABLE=value what is wrong``."""
    if not error["loc"]:
        # A check across several settings: its message names them. Its input is every
        # setting, secrets included, so none of it is shown.
        return str((error.get("ctx") or {}).get("error") or error["msg"]).removeprefix(
            "Value error, "
        )
    field = str(error["loc"][0])
    known = field in Settings.model_fields
    name = _variable(field) if known else field
    value = error.get("input")
    kind, ctx = error["type"], error.get("ctx") or {}
    if known and Settings.model_fields[field].repr is False:
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
        low, high = _bounds(field)
        what = f"is outside {low}..{high}" if high is not None else f"must be at least {low}"
    else:
        what = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return f"{name}={shown} {what}"


def _bounds(field: str) -> tuple[Any, Any]:
    low = high = None
    for item in Settings.model_fields[field].metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
    return low, high


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing variables)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_one_line(exc.errors()[0])) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
