"""All configuration, read from environment variables with local defaults.

Every setting is documented in docs/configuration.md (one table). Nothing else in the project
reads ``os.environ`` for configuration: import :func:`get_settings` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from stockapp.errors import StockappError
from stockapp.tables.intervals import parse_interval

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(StockappError):
    """A setting has a value the program cannot use; the message names the variable."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _int(name: str, default: int, *, low: int = 0, high: int = 2**31) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside {low}..{high}")
    return value


def _list(name: str, default: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env(name, default).split(",") if part.strip())


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default)
    if value not in choices:
        raise SettingsError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` (no IPv6 brackets needed for the loopback defaults)."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    try:
        return host, int(port)
    except ValueError:
        raise SettingsError(f"bad address {address!r}: port is not a number") from None


@dataclass(frozen=True)
class Settings:
    # Kafka
    kafka_bootstrap: tuple[str, ...] = ("127.0.0.1:9092",)
    # Cassandra
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 9042
    cassandra_keyspace: str = "stock_data"
    cassandra_replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    cassandra_username: str = ""
    cassandra_password: str = field(default="", repr=False)  # never printed
    cassandra_connect_timeout: float = 5.0
    # Topics (docs/streaming.md)
    topic_quotes: str = "quotes.raw"
    topic_candles: str = "candles"
    topic_late: str = "quotes.late"
    topic_dlq: str = "quotes.dlq"
    quotes_partitions: int = 8
    topic_replication: int = 1
    # Candles
    intervals: tuple[str, ...] = ("1m", "5m", "15m", "1h", "1d")
    market_timezone: str = "America/New_York"
    grace_seconds: float = 5.0
    idle_close_seconds: float = 10.0
    max_future_skew_seconds: float = 300.0
    store_raw_quotes: bool = True
    # Alpha Vantage
    alpha_vantage_api_key: str = field(default="", repr=False)  # never printed
    alpha_vantage_url: str = "https://www.alphavantage.co/query"
    # Throughput
    batch_max: int = 5000
    batch_within_ms: int = 50
    cassandra_concurrency: int = 32
    # Faust worker and its web server
    app_id: str = "stockapp"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    cors_origins: tuple[str, ...] = ()
    frontend_dist: Path = REPO_ROOT / "frontend" / "dist"
    table_store: str = "auto"
    data_dir: Path = REPO_ROOT / ".data"
    log_level: str = "WARNING"
    # Local stack started by `make up` (ignored when pointing at external servers)
    stack_dir: Path = REPO_ROOT / ".stack"
    run_dir: Path = REPO_ROOT / ".run"
    stack_java_home: str = ""
    stack_kafka_controller_port: int = 9093
    stack_kafka_heap: str = "512m"
    stack_cassandra_storage_port: int = 7000
    stack_cassandra_heap: str = "1g"
    stack_start_timeout: int = 180

    @property
    def kafka_broker_url(self) -> str:
        """Faust's broker URL form: ``kafka://host:port;host:port``."""
        return "kafka://" + ";".join(self.kafka_bootstrap)

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return host_port(self.kafka_bootstrap[0], 9092)


def _float(name: str, default: float, *, low: float = 0.0) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value >= low:
        raise SettingsError(f"{name}={value} must be at least {low}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name}={raw!r} must be true or false")
    return raw in ("true", "1", "yes")


def _intervals(name: str, default: str, market_tz: str) -> tuple[str, ...]:
    names = _list(name, default)
    try:
        for interval in names:
            parse_interval(interval, market_tz)
    except (ValueError, KeyError) as exc:
        raise SettingsError(f"{name}: {exc}") from None
    if not names or len(set(names)) != len(names):
        raise SettingsError(f"{name} must list distinct intervals")
    return names


def _timezone(name: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = _env(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}={value!r} is not a known time zone") from None
    return value


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing variables)."""
    bootstrap = _list("STOCKAPP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not bootstrap:
        raise SettingsError("STOCKAPP_KAFKA_BOOTSTRAP is empty")
    for address in bootstrap:
        host_port(address, 9092)
    market_tz = _timezone("STOCKAPP_MARKET_TIMEZONE", "America/New_York")
    return Settings(
        kafka_bootstrap=bootstrap,
        topic_quotes=_env("STOCKAPP_TOPIC_QUOTES", "quotes.raw"),
        topic_candles=_env("STOCKAPP_TOPIC_CANDLES", "candles"),
        topic_late=_env("STOCKAPP_TOPIC_LATE", "quotes.late"),
        topic_dlq=_env("STOCKAPP_TOPIC_DLQ", "quotes.dlq"),
        quotes_partitions=_int("STOCKAPP_QUOTES_PARTITIONS", 8, low=1, high=10_000),
        topic_replication=_int("STOCKAPP_TOPIC_REPLICATION", 1, low=1, high=100),
        intervals=_intervals("STOCKAPP_INTERVALS", "1m,5m,15m,1h,1d", market_tz),
        market_timezone=market_tz,
        grace_seconds=_float("STOCKAPP_GRACE_SECONDS", 5.0),
        idle_close_seconds=_float("STOCKAPP_IDLE_CLOSE_SECONDS", 10.0, low=0.5),
        max_future_skew_seconds=_float("STOCKAPP_MAX_FUTURE_SKEW_SECONDS", 300.0),
        store_raw_quotes=_bool("STOCKAPP_STORE_RAW_QUOTES", True),
        alpha_vantage_api_key=_env("ALPHA_VANTAGE_API_KEY", ""),
        alpha_vantage_url=_env("STOCKAPP_ALPHA_VANTAGE_URL", "https://www.alphavantage.co/query"),
        batch_max=_int("STOCKAPP_BATCH_MAX", 5000, low=1),
        batch_within_ms=_int("STOCKAPP_BATCH_WITHIN_MS", 50, low=1),
        cassandra_concurrency=_int("STOCKAPP_CASSANDRA_CONCURRENCY", 32, low=1, high=1024),
        cassandra_hosts=_list("STOCKAPP_CASSANDRA_HOSTS", "127.0.0.1"),
        cassandra_port=_int("STOCKAPP_CASSANDRA_PORT", 9042, low=1, high=65535),
        cassandra_keyspace=_env("STOCKAPP_CASSANDRA_KEYSPACE", "stock_data"),
        cassandra_replication=_env(
            "STOCKAPP_CASSANDRA_REPLICATION", "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        ),
        cassandra_username=_env("STOCKAPP_CASSANDRA_USERNAME", ""),
        cassandra_password=_env("STOCKAPP_CASSANDRA_PASSWORD", ""),
        cassandra_connect_timeout=float(_int("STOCKAPP_CASSANDRA_CONNECT_TIMEOUT", 5, low=1)),
        app_id=_env("STOCKAPP_APP_ID", "stockapp"),
        web_host=_env("STOCKAPP_WEB_HOST", "127.0.0.1"),
        web_port=_int("STOCKAPP_WEB_PORT", 6066, low=1, high=65535),
        cors_origins=_list("STOCKAPP_CORS_ORIGINS", ""),
        frontend_dist=Path(_env("STOCKAPP_FRONTEND_DIST", str(REPO_ROOT / "frontend" / "dist"))),
        table_store=_choice("STOCKAPP_TABLE_STORE", "auto", ("auto", "memory", "rocksdb")),
        data_dir=Path(_env("STOCKAPP_DATA_DIR", str(REPO_ROOT / ".data"))),
        log_level=_choice(
            "STOCKAPP_LOG_LEVEL", "WARNING", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ),
        stack_dir=Path(_env("STOCKAPP_STACK_DIR", str(REPO_ROOT / ".stack"))),
        run_dir=Path(_env("STOCKAPP_RUN_DIR", str(REPO_ROOT / ".run"))),
        stack_java_home=_env("STOCKAPP_STACK_JAVA_HOME", ""),
        stack_kafka_controller_port=_int(
            "STOCKAPP_STACK_KAFKA_CONTROLLER_PORT", 9093, low=1, high=65535
        ),
        stack_kafka_heap=_env("STOCKAPP_STACK_KAFKA_HEAP", "512m"),
        stack_cassandra_storage_port=_int(
            "STOCKAPP_STACK_CASSANDRA_STORAGE_PORT", 7000, low=1, high=65535
        ),
        stack_cassandra_heap=_env("STOCKAPP_STACK_CASSANDRA_HEAP", "1g"),
        stack_start_timeout=_int("STOCKAPP_STACK_START_TIMEOUT", 180, low=10),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
