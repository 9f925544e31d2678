"""The Faust application: one per worker process.

Agents and tables live in ``stockapp.agents`` and ``stockapp.tables`` (the repo's top-level
``agents/`` and ``tables/`` folders, mapped in setup.cfg) and register themselves through
``autodiscover``; this module only builds the app from the settings. The app object owns the
worker's :class:`QuoteProcessor` once the quotes agent has started it; the web layer reads it
from here, so no module reaches into another's globals.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from stockapp.checkpoint import StoredListener
from stockapp.credentials import faust_credentials
from stockapp.faust_compat import ROCKSDB_SCHEME, SafeSeekApp
from stockapp.processing import AppliedListener, ChangeListener, QuoteProcessor
from stockapp.settings import Settings, get_settings
from stockapp.sinks.cassandra_session import LazySession
from stockapp.sinks.rules import RuleStore
from stockapp.stats import ProcessorView
from stockapp.tables.signals import built_in_for
from stockapp.tables.signals.book import RuleBook
from stockapp.web.guard import protect
from stockapp.web.static import mount


def table_store(choice: str) -> str:
    """``auto``: RocksDB where its binding (rocksdict) is installed, memory otherwise."""
    if choice == "auto":
        choice = "rocksdb" if importlib.util.find_spec("rocksdict") else "memory"
    return f"{ROCKSDB_SCHEME}://" if choice == "rocksdb" else "memory://"


class StockApp(SafeSeekApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.processor: QuoteProcessor | None = None  # set when the quotes agent starts
        # Told after each stored change of the processor (live push registers here).
        self.change_listeners: list[ChangeListener] = []
        # Told after each batch is applied, before it is stored (live push of forming candles).
        self.applied_listeners: list[AppliedListener] = []
        # Told of closed candles once Cassandra has them (the web's candle cache).
        self.stored_listeners: list[StoredListener] = []
        settings = get_settings()
        # The signal rules in force (built-in and users'), and where users' rules are kept;
        # agents/rules.py reloads them, the rules API changes them.
        built_in = (
            built_in_for(settings.intervals, settings.indicator_outputs)
            if settings.builtin_rules
            else ()
        )
        self.rule_book = RuleBook(built_in)
        # One session for the web API's reads and the rules (the sink has its own).
        self.cassandra = LazySession(settings)
        self.rule_store = RuleStore(settings, self.cassandra)

    @property
    def view(self) -> ProcessorView | None:
        """The processor as the web layer reads it (None until the quotes agent starts)."""
        return self.processor

    def use_processor(self, processor: QuoteProcessor) -> None:
        processor.listeners.extend(self.change_listeners)
        processor.applied_listeners.extend(self.applied_listeners)
        processor.checkpoint.stored_listeners.extend(self.stored_listeners)
        self.processor = processor

    def on_webserver_init(self, web: Any) -> None:
        settings = get_settings()
        # Host names, the bearer token and body sizes, checked before anything else.
        protect(web, settings)
        # The built front end, on the same port as the API (see stockapp/web/static.py).
        mount(web, settings)


def create_app(settings: Settings) -> StockApp:
    store = table_store(settings.table_store)
    return StockApp(
        settings.app_id,
        broker=settings.kafka_broker_url,
        broker_credentials=faust_credentials(settings),
        store=store,
        autodiscover=["stockapp.agents", "stockapp.tables", "stockapp.web"],
        origin="stockapp",
        datadir=str(settings.worker_dir / "{conf.id}"),
        web_bind=settings.web_host,
        web_host=settings.web_advertised,
        web_port=settings.web_port,
        canonical_url=f"http://{settings.web_advertised}:{settings.web_port}",
        # Faust's own /router and /table views would serve any table's contents to anyone
        # who can reach the port; nothing of stockapp uses them.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_application_options={"client_max_size": settings.api_max_request_bytes},
        # Faust's own default ("-", every tick at WARN) is noisy; a worker is quiet by default.
        loghandlers=[],
        topic_partitions=settings.quotes_partitions,
        topic_replication_factor=settings.topic_replication,
        # Workers that keep a copy of other workers' table partitions, ready for a takeover.
        table_standby_replicas=settings.standby_replicas,
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        # The usual third of the session timeout, never more than Faust's 3 s.
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_seconds / 3),
        producer_acks=-1,
        # Lowered at start to what every topic the worker writes takes (state_budget.py).
        producer_max_batch_size=settings.kafka_producer_batch_bytes,
        # On shutdown or rebalance, don't wait for the batch in flight: one stuck on a Cassandra
        # outage would hold SIGTERM for ever. The agent acks a batch only once it is stored
        # (agents/quotes.py), so a cut-short batch is replayed, and every effect is
        # idempotent. (A revoke still waits for it: on_revoked takes the lock.)
        stream_wait_empty=False,
        # Faust would read its own variables (WEB_PORT, BROKER_URL, APP_STORE, ...) and let
        # them override these settings; stockapp's settings are the only configuration.
        env={},
    )


app = create_app(get_settings())
