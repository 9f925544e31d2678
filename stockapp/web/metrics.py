"""GET /metrics: the worker in Prometheus' text format (docs/operations.md lists the series).

The counters are the processor's, the sink's and the live hub's own, read at scrape time; the
histograms are observed where things happen (stockapp/metrics.py). Labels are bounded:
outcome, reason class, interval, partition, rule in force (a deleted rule's series goes);
never a symbol. A scrape asks the broker for the quotes partitions' end offsets (one request,
as the timer does) and runs the /ready checks, so that lag and readiness are current, not as
of the last fetch.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from faust.web import Request, Response, View
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stockapp.agents.quotes import backlog, owned_partitions
from stockapp.agents.rules import fired_in_force
from stockapp.agents.webhook import notifier
from stockapp.app import app
from stockapp.faust_compat import tables_recovered
from stockapp.metrics import REGISTRY
from stockapp.settings import get_settings
from stockapp.stats import Snapshot
from stockapp.validation import Reason
from stockapp.web.guard import REFUSAL_REASONS, REFUSED
from stockapp.web.live import hub
from stockapp.web.ops import readiness
from stockapp.web.signals import tail

CONTENT_TYPE = "text/plain; version=0.0.4"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


BUILD = {
    "version": _version("stockapp"),
    "faust": _version("faust-streaming"),
    "python": platform.python_version(),
}


class WorkerCollector(Collector):
    """The worker's counters and gauges, from the objects that keep them."""

    def __init__(self) -> None:
        self.ready: bool | None = None
        self.lag: dict[int, int | None] = {}

    async def refresh(self) -> None:
        """What needs a request to be current: readiness and the end offsets."""
        self.ready, _ = await readiness()
        proc = app.view
        if proc is None or app.rebalancing:
            self.lag = {}
            return
        try:
            partitions = sorted(owned_partitions())
        except Exception:  # noqa: BLE001 - the consumer is not started: no partitions yet
            partitions = []
        positions = proc.snapshot().positions
        self.lag = await backlog({p: positions.get(p) for p in partitions})

    def collect(self) -> Iterator[Metric]:
        proc = app.view
        snap = proc.snapshot() if proc else Snapshot.empty()
        stats = snap.stats
        yield _counter(
            "stockapp_records",
            "Records of the quotes topic processed and stored (a packed record holds many quotes).",
            stats.stored_records,
        )
        outcomes = CounterMetricFamily(
            "stockapp_quotes",
            "Quotes by outcome: on_time, late and outside_session were applied (late ones "
            "changed only the intervals still open, and went to the late topic; "
            "outside_session ones fell outside the trading sessions that count and are in no "
            "candle, only stored as raw quotes); duplicate were replays the "
            "replay guard skipped; invalid went to the dead-letter topic (a whole bad record "
            "counts once).",
            labels=["outcome"],
        )
        outcomes.add_metric(["on_time"], stats.quotes - stats.late - stats.outside_session)
        outcomes.add_metric(["late"], stats.late)
        outcomes.add_metric(["outside_session"], stats.outside_session)
        outcomes.add_metric(["duplicate"], stats.duplicates + stats.repeats)
        outcomes.add_metric(["invalid"], stats.invalid)
        yield outcomes
        invalid = CounterMetricFamily(
            "stockapp_invalid",
            "Records or packed elements sent to the dead-letter topic, by reason class.",
            labels=["reason"],
        )
        for kind in Reason:
            invalid.add_metric([kind.value], snap.invalid_by_reason[kind])
        yield invalid
        closed = CounterMetricFamily(
            "stockapp_candles_closed",
            "Candles closed (stored, and published to the candles topic), by interval.",
            labels=["interval"],
        )
        for interval in get_settings().intervals:
            closed.add_metric([interval], snap.closed_by_interval[interval])
        yield closed
        fired = CounterMetricFamily(
            "stockapp_signals",
            "Signals fired by this worker (stored when final, published either way), by rule.",
            labels=["rule"],
        )
        for rule, count in fired_in_force().items():  # rules in force only: a bounded set
            fired.add_metric([rule], count)
        yield fired
        yield _gauge(
            "stockapp_signal_rules",
            "Signal rules in force on this worker (built-in and users').",
            len(app.rule_book.rules),
        )
        webhook = CounterMetricFamily(
            "stockapp_webhook_signals",
            "Signals handled by this worker's webhook notifier: delivered, or dead-lettered "
            "after the tries.",
            labels=["outcome"],
        )
        webhook.add_metric(["delivered"], notifier.delivered)
        webhook.add_metric(["dead_lettered"], notifier.dead_lettered)
        yield webhook
        yield _counter(
            "stockapp_webhook_retries",
            "Webhook POSTs tried again (a 5xx, 408, 429 or no answer).",
            notifier.retries,
        )
        yield _counter("stockapp_batches", "Batches taken from the stream.", stats.batches)
        yield _counter(
            "stockapp_batch_retries",
            "Failed attempts to store a batch (each is retried from the stored state).",
            stats.batch_retries,
        )
        yield _counter(
            "stockapp_timer_retries",
            "Failed attempts of the timer to close candles (retried on the next tick).",
            stats.timer_retries,
        )
        yield _counter(
            "stockapp_cassandra_retries",
            "Cassandra writes retried after a timeout or an unavailable node.",
            snap.cassandra_retries,
        )
        yield _gauge(
            "stockapp_cassandra_writes_in_flight",
            "Cassandra write statements sent and not yet acknowledged.",
            snap.cassandra_in_flight,
        )
        yield _gauge(
            "stockapp_producer_pending",
            "Records handed to the Kafka producer by the current batch and not yet acknowledged.",
            snap.pending_sends,
        )
        lag = GaugeMetricFamily(
            "stockapp_consumer_lag",
            "Records of each assigned quotes partition not processed yet (end offset from "
            "the broker at scrape time).",
            labels=["partition"],
        )
        for partition, left in sorted(self.lag.items()):
            if left is not None:
                lag.add_metric([str(partition)], max(left, 0))
        yield lag
        yield _gauge(
            "stockapp_partitions_assigned",
            "Quotes partitions assigned to this worker.",
            len(self.lag),
        )
        yield _gauge(
            "stockapp_tables_recovered",
            "1 once the state table is recovered from its changelog after a start or a "
            "rebalance; no candle closes before.",
            int(tables_recovered(app)),
        )
        yield _gauge(
            "stockapp_batch_stuck",
            "1 while a batch keeps failing (retried, never skipped; /ready names it).",
            int(snap.stuck is not None),
        )
        yield _gauge(
            "stockapp_ready",
            "1 when /ready answers 200: Kafka and Cassandra answer, tables recovered, no "
            "stuck batch.",
            int(bool(self.ready)),
        )
        yield _gauge(
            "stockapp_symbols_in_memory",
            "Symbol states held in memory by this worker.",
            snap.symbols_loaded,
        )
        yield _gauge(
            "stockapp_symbols_held",
            "Symbols this worker holds state for in its partitions (STOCKAPP_MAX_SYMBOLS "
            "bounds it; counted once a new symbol arrives after a start or rebalance).",
            snap.symbols_held or 0,
        )
        yield _gauge(
            "stockapp_state_bytes_max",
            "The largest symbol state this worker wrote since its last rebalance, encoded.",
            snap.largest_state[0],
        )
        yield _gauge(
            "stockapp_state_budget_bytes",
            "The most a symbol's encoded state may take (STOCKAPP_STATE_MAX_BYTES).",
            get_settings().state_max_bytes,
        )
        yield _gauge(
            "stockapp_websocket_clients",
            "Live WebSocket connections open (served here or relayed from the owner).",
            hub.clients,
        )
        yield _counter(
            "stockapp_websocket_dropped",
            "Live clients disconnected for reading too slowly.",
            hub.dropped,
        )
        live_refused = CounterMetricFamily(
            "stockapp_websocket_refused",
            "Live WebSocket handshakes refused at a limit: this worker's (worker) or one "
            "client address's (client).",
            labels=["limit"],
        )
        for limit in ("worker", "client"):
            live_refused.add_metric([limit], hub.refused[limit])
        yield live_refused
        yield _counter(
            "stockapp_live_signals_malformed",
            "Records of the signals topic that were not signals: dropped, never pushed.",
            tail.malformed,
        )
        refused = CounterMetricFamily(
            "stockapp_web_refused",
            "Requests the web guard refused, by reason: host, origin, size, routed, token, "
            "write, rate, other.",
            labels=["reason"],
        )
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], REFUSED[reason])
        yield refused
        info = GaugeMetricFamily(
            "stockapp_build_info", "Versions of this worker.", labels=list(BUILD)
        )
        info.add_metric(list(BUILD.values()), 1)
        yield info


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


collector = WorkerCollector()
REGISTRY.register(collector)


@app.page("/metrics")
class Metrics(View):
    """Prometheus scrape endpoint."""

    async def get(self, request: Request) -> Response:
        await collector.refresh()
        return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE)
