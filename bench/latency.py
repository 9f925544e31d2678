"""Latency of one worker at paced loads, and of the history API under a few clients.

    .venv/bin/python -m bench.latency [--rates 1000,10000] [--seconds 45] [--symbols 50]

Needs the local stack (`make up`); `make bench` runs it after the throughput table. For each
rate, quotes of ``--symbols`` live symbols are produced as `stockapp produce` does at that rate
(packed: each 10 ms, each symbol's due quotes share a record) while a WebSocket client per
symbol follows its 1m candle. Each quote's price is unique, so a forming-candle message names
the quote it last took in: produce -> message is the arrival of the first message carrying that
price minus the quote's send. A closed-candle message is pushed once the candle is stored in
Cassandra, so window end -> message measures window end -> closed candle durable (grace, 5 s,
included). The run starts 30 s into a minute so that it crosses a minute's end. Then
``/api/candles`` is asked for 500 and 5,000 candles of a symbol with 5,000 stored, by 4
concurrent clients, each request timed to its body's last byte. Reports p50/p99/max; JSON
and Markdown go to bench/results/ (git-ignored). Speeds are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson

from bench.stream import delete_topics
from stockapp.db.migrate import migrate
from stockapp.devstack.worker import WorkerProcess, free_port
from stockapp.models import Quote
from stockapp.settings import Settings, get_settings
from stockapp.sinks.cassandra_session import connect
from stockapp.sources.producer import QuoteProducer

RESULTS = Path(__file__).resolve().parent / "results"
STEP_S = 0.01  # the producer's send interval (a linger of 10 ms)
HISTORY_CANDLES = 5000
CLIENTS = 4
REQUESTS = 20  # per client and size


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.50), "p99": at(0.99), "max": ordered[-1]}


async def _follow(url: str, sent: dict, forming: list, closed: list, stop: asyncio.Event) -> None:
    """One WebSocket client: latencies of forming messages (by the quote they took in) and of
    closed ones (from their window end), in ms."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.receive(), 0.5)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            now = time.time() * 1000
            body = json.loads(message.data)
            candle = body["candle"]
            if candle["closed"]:
                closed.append(now - (candle["t"] + 60) * 1000)
            else:
                # The first message that carries a quote's price is that quote's push. Later
                # ones with the same close are the candle before, still forming within the
                # grace period and sent again with each change: not a delivery of the quote.
                sent_ms = sent.pop((body["symbol"], candle["c"]), None)
                if sent_ms is not None:
                    forming.append(now - sent_ms)


async def _paced(
    settings: Settings, names: list[str], rate: int, seconds: float, sent: dict
) -> int:
    """``rate`` quotes/s for ``seconds``, round-robin over ``names``, live event times; each
    quote's price is unique and its send time goes to ``sent``."""
    count = 0
    began = time.monotonic()
    async with QuoteProducer(settings, pack=100) as producer:
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate) - count
            now_ms = int(time.time() * 1000)
            quotes = []
            for _ in range(max(due, 0)):
                symbol = names[count % len(names)]
                price = round(100 + count * 0.0001, 4)
                quotes.append(Quote(symbol, now_ms, price, 1.0))
                sent[(symbol, price)] = time.time() * 1000
                count += 1
            if quotes:
                await producer.send_many(quotes)
            await asyncio.sleep(STEP_S)
    return count


HISTOGRAMS = ("stockapp_batch_seconds", "stockapp_cassandra_write_seconds")


async def _histograms(port: int) -> dict[str, dict[float, float]]:
    """The worker's latency histograms from /metrics: cumulative count by bucket bound."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    return {
        family.name: {
            float(sample.labels["le"]): sample.value
            for sample in family.samples
            if sample.name.endswith("_bucket")
        }
        for family in text_string_to_metric_families(text)
        if family.name in HISTOGRAMS
    }


def bucket_quantile(
    before: dict[float, float], after: dict[float, float], q: float
) -> float | None:
    """The bound of the bucket holding the q-quantile of what was observed between two
    snapshots (an upper bound of the true quantile, to the histogram's resolution), in ms."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    for bound, count in zip(bounds, counts, strict=True):
        if count >= q * counts[-1]:
            return bound * 1000
    return None


async def _wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def _api_load(port: int, symbol: str) -> dict[str, dict]:
    out = {}
    async with aiohttp.ClientSession() as http:
        for limit in (500, HISTORY_CANDLES):
            url = f"http://127.0.0.1:{port}/api/candles/{symbol}?interval=1m&limit={limit}"
            took: list[float] = []
            answers: list[tuple[int, bytes]] = []

            async def client(
                url: str = url, took: list[float] = took, answers: list = answers
            ) -> None:
                for _ in range(REQUESTS):
                    # Timed to the body's last byte, as HTTP load tools time a request; the
                    # bodies are decoded and checked once every client is done, since the
                    # clients share this event loop and one's decode would hold up another's
                    # reading. Until 2026-12-06 each request's timing took in a decode
                    # (aiohttp's json(), the standard library's: about 45 ms for 5,000
                    # candles here), its own and the other clients'.
                    began = time.perf_counter()
                    async with http.get(url) as response:
                        raw = await response.read()
                        status = response.status
                    took.append((time.perf_counter() - began) * 1000)
                    answers.append((status, raw))

            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            for status, raw in answers:
                body = orjson.loads(raw)
                assert status == 200, body
                assert len(body["candles"]) == limit, len(body["candles"])
            out[str(limit)] = percentiles(took)
    return out


async def measure(rates: list[int], seconds: float, symbols: int) -> dict:
    settings = get_settings()
    unique = uuid.uuid4().hex[:10]
    keyspace = f"stockapp_bench_{unique}"
    topic = f"bench.{unique}.quotes"
    migrate(settings, keyspace=keyspace)
    workdir = Path(tempfile.mkdtemp(prefix="stockapp-latency-"))
    port = free_port()
    env = {
        "STOCKAPP_APP_ID": f"stockapp-bench-{unique}",
        # Its quotes are stamped now, at whatever hour it runs: the always-open calendar (what
        # a quote's session check costs is in the throughput bench, which runs on XNYS).
        "STOCKAPP_EXCHANGE": "ALWAYS_OPEN",
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
        "STOCKAPP_TOPIC_LATE": f"{topic}.l",
        "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
        "STOCKAPP_TOPIC_SIGNALS": f"{topic}.s",
        "STOCKAPP_TOPIC_SIGNALS_DLQ": f"{topic}.sd",
        "STOCKAPP_CASSANDRA_KEYSPACE": keyspace,
        "STOCKAPP_DATA_DIR": str(workdir / "data"),
        "STOCKAPP_WEB_PORT": str(port),
        # The clients stand for one user per symbol; here they all come from 127.0.0.1.
        "STOCKAPP_LIVE_MAX_PER_CLIENT": "1000",
    }
    run_settings = settings.model_copy(
        update={"topic_quotes": topic, "cassandra_keyspace": keyspace}
    )
    worker = WorkerProcess(env, workdir / "worker.log")
    report: dict = {"rates": {}, "api": {}}
    try:
        worker.start()

        async def ready() -> bool:
            return bool(await asyncio.to_thread(worker.stats, True))

        await _wait_for("the worker", ready, 120)
        # History for the API: one tick a minute for 5,000 minutes, ending an hour ago.
        history = "HIST"
        end_ms = (int(time.time() * 1000) // 60_000 - 60) * 60_000
        ticks = [
            Quote(history, end_ms - (HISTORY_CANDLES + 1 - i) * 60_000, 100 + i * 0.01, 1.0)
            for i in range(HISTORY_CANDLES + 2)
        ]
        async with QuoteProducer(run_settings, pack=1000) as producer:
            await producer.send_many(ticks)

        async def history_stored() -> bool:
            url = f"http://127.0.0.1:{port}/api/candles/{history}?interval=1m&limit=5000"
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                if response.status != 200:
                    return False
                body = await response.json()
                return sum(1 for c in body["candles"] if c["closed"]) >= HISTORY_CANDLES

        await _wait_for("the history", history_stored, 300)
        report["api"] = await _api_load(port, history)

        for rate in rates:
            names = [f"L{rate}X{i:03d}" for i in range(symbols)]
            # Start 30 s into a minute: the run crosses the minute's end.
            await asyncio.sleep((30 - time.time() % 60) % 60)
            sent: dict = {}
            forming: list[float] = []
            closed: list[float] = []
            stop = asyncio.Event()
            clients = [
                asyncio.create_task(
                    _follow(
                        f"ws://127.0.0.1:{port}/api/live/{name}?interval=1m",
                        sent,
                        forming,
                        closed,
                        stop,
                    )
                )
                for name in names
            ]
            await asyncio.sleep(1)  # subscribed before the first quote
            before = await _histograms(port)
            produced = await _paced(run_settings, names, rate, seconds, sent)
            await asyncio.sleep(10)  # the last messages, and closes by the wall clock
            after = await _histograms(port)
            stop.set()
            await asyncio.gather(*clients, return_exceptions=True)
            report["rates"][str(rate)] = {
                "produced": produced,
                "produce_to_message_ms": percentiles(forming),
                "window_end_to_closed_ms": percentiles(closed),
                # Where the time goes, from the worker's own histograms over the run: one
                # batch from taken to stored, and one Cassandra write statement.
                "worker_ms": {
                    name.removeprefix("stockapp_").removesuffix("_seconds"): {
                        f"p{int(q * 100)}": bucket_quantile(before[name], after[name], q)
                        for q in (0.5, 0.99)
                    }
                    for name in HISTOGRAMS
                },
            }
            print(f"  {rate:,} quotes/s: {report['rates'][str(rate)]}", flush=True)
    finally:
        worker.stop()
        cluster, session = connect(settings, keyspace=None)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
        await delete_topics(settings.kafka_bootstrap[0], [topic])
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def markdown(report: dict) -> str:
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    lines = [
        f"Latency, {report['date']}: one worker, {report['symbols']} live symbols, "
        f"{report['cores']} cores shared with Kafka and Cassandra.",
        "",
        "| load | produce → WebSocket p50 / p99 / max (ms) | window end → closed candle "
        "p50 / p99 / max (ms) |",
        "|---|---|---|",
    ]
    for rate, r in report["rates"].items():
        a, b = r["produce_to_message_ms"], r["window_end_to_closed_ms"]
        lines.append(
            f"| {int(rate):,} quotes/s | {ms(a['p50'])} / {ms(a['p99'])} / {ms(a['max'])} "
            f"| {ms(b['p50'])} / {ms(b['p99'])} / {ms(b['max'])} |"
        )
    lines += [
        "",
        "| load | worker: batch p50 / p99 (ms, at most) | worker: Cassandra write p50 / p99 "
        "(ms, at most) |",
        "|---|---|---|",
    ]
    for rate, r in report["rates"].items():
        batch, write = r["worker_ms"]["batch"], r["worker_ms"]["cassandra_write"]
        lines.append(
            f"| {int(rate):,} quotes/s | {ms(batch['p50'])} / {ms(batch['p99'])} "
            f"| {ms(write['p50'])} / {ms(write['p99'])} |"
        )
    lines += ["", f"| `/api/candles` ({CLIENTS} clients) | p50 (ms) | p99 (ms) |", "|---|---|---|"]
    for limit, r in report["api"].items():
        lines.append(f"| {int(limit):,} candles | {ms(r['p50'])} | {ms(r['p99'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="1000,10000")
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    report = asyncio.run(measure(rates, args.seconds, args.symbols))
    report.update(
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        cores=os.cpu_count(),
        symbols=args.symbols,
        seconds=args.seconds,
    )
    table = markdown(report)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"latency-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    stem.with_suffix(".md").write_text(table)
    print(f"written: {stem}.json and .md")


if __name__ == "__main__":
    main()
