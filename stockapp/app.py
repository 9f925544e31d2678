"""The Faust application: one per worker process.

Agents and tables live in the top-level ``agents`` and ``tables`` packages and register
themselves through ``autodiscover``; this module only builds the app from the settings.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import faust

from stockapp.settings import Settings, get_settings


def table_store(choice: str) -> str:
    """``auto``: RocksDB where its binding (rocksdict) is installed, memory otherwise."""
    if choice == "auto":
        choice = "rocksdb" if importlib.util.find_spec("rocksdict") else "memory"
    if choice == "rocksdb":
        from tables.store import SCHEME

        return f"{SCHEME}://"
    return "memory://"


class StockApp(faust.App):
    def on_webserver_init(self, web: Any) -> None:
        # The built front end, on the same port as the API (see stockapp/web/static.py).
        from stockapp.web.static import mount

        mount(web, get_settings())


def create_app(settings: Settings) -> faust.App:
    store = table_store(settings.table_store)
    return StockApp(
        settings.app_id,
        broker=settings.kafka_broker_url,
        store=store,
        autodiscover=["agents", "tables", "stockapp.web"],
        origin="stockapp",
        datadir=str(settings.data_dir / "{conf.id}"),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{settings.web_host}:{settings.web_port}",
        # Faust's own default ("-", every tick at WARN) is noisy; a worker is quiet by default.
        loghandlers=[],
        topic_partitions=settings.quotes_partitions,
        topic_replication_factor=settings.topic_replication,
        producer_acks=-1,
    )


app = create_app(get_settings())
