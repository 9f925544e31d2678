"""The worker's Prometheus metrics that are observed where things happen (histograms).

Counters and gauges are not kept here: the processor, the sink and the live hub already count
what they do, and ``stockapp/web/metrics.py`` reads those numbers when Prometheus scrapes, so
the hot path pays nothing for them. Only distributions need an observation as they happen,
once per batch or per Cassandra statement, never per quote.

One registry per process, not prometheus_client's global one: tests that import the package
twice, or build several processors, must not collide on names.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, cpu seconds, open fds
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

BATCH_RECORDS = Histogram(
    "stockapp_batch_records",
    "Kafka records in each batch the worker stored.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "stockapp_batch_seconds",
    "Time to process one batch until it is stored: parsing, candles and indicators, the "
    "Cassandra writes, the candles/late/dead-letter records and the state's changelog.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
CASSANDRA_WRITE_SECONDS = Histogram(
    "stockapp_cassandra_write_seconds",
    "Time for one Cassandra write statement (a symbol's rows in an UNLOGGED batch, or one "
    "row) to be acknowledged, retries included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
    registry=REGISTRY,
)
