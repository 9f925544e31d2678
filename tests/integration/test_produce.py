"""`stockapp produce` against the real broker: every simulated quote arrives, keyed, valid."""

import asyncio
import dataclasses
import itertools
import os
import re
import signal
import subprocess
import time

import orjson
import pytest

from stockapp.sources.simulator import Simulator
from stockapp.validation import parse_record
from tests.helpers import BIN, REPO, free_port, read_topic, run, topic_env

START = "2026-01-05T14:00:00+00:00"
START_MS = 1_767_621_600_000


@pytest.mark.parametrize("pack", [["--pack", "1"], []], ids=["one-per-record", "default"])
def test_simulated_quotes_arrive_keyed_and_valid(stack, unique, pack):
    """One quote per record, or (the default at --rate 0) up to 100 of a symbol's quotes per
    record: the same quotes in the same order per symbol either way."""
    topic = f"produce.{unique}.quotes"
    result = run(
        [
            str(BIN / "stockapp"),
            "produce",
            "--source",
            "simulator",
            "--count",
            "3000",
            "--rate",
            "0",
            "--seed",
            "9",
            "--start",
            START,
            "--speedup",
            "60",
            "--symbols",
            "AAPL,MSFT,TSLA",
            *pack,
        ],
        env={
            **topic_env(topic),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "sent 3000 quotes (AAPL " in result.stderr and "0 failed" in result.stderr

    records = asyncio.run(read_topic(stack.kafka_bootstrap[0], topic))
    if pack:
        assert len(records) == 3000
    else:
        assert len(records) < 3000 / 10  # packed: quotes due together share records
        assert all(len(orjson.loads(r.value)) <= 100 for r in records if r.value[:1] == b"[")
    expected = list(
        itertools.islice(
            Simulator(["AAPL", "MSFT", "TSLA"], 9, 1000.0, START_MS, 60.0).ticks(), 3000
        )
    )
    ids: set[str] = set()
    for symbol in ("AAPL", "MSFT", "TSLA"):
        mine = sorted((r for r in records if r.key == symbol.encode()), key=lambda r: r.offset)
        assert len({r.partition for r in mine}) == 1
        quotes = [q for r in mine for q in parse_record(r.key, r.value, START_MS + 10**9, 0)]
        # The producer names each quote (<run>:<n>) so that a resend can be told apart.
        assert all(re.fullmatch(r"[0-9a-f]{8}:\d+", q.id) for q in quotes)
        assert [dataclasses.replace(q, id=None) for q in quotes] == [
            t for t in expected if t.symbol == symbol
        ]
        ids.update(q.id for q in quotes)
    assert len(ids) == 3000


def test_csv_replay_publishes_every_good_row(stack, unique, tmp_path):
    topic = f"csv.{unique}.quotes"
    sample = REPO / "docs" / "samples" / "ticks.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text(sample.read_text() + "AAPL,1767623700000,-2,5\n")
    env = {
        **topic_env(topic),
    }
    result = run([str(BIN / "stockapp"), "produce", "--source", "csv", "--file", str(bad)], env=env)
    assert result.returncode == 0, result.stderr
    assert f"{bad}:122: skipped: price must be > 0" in result.stderr
    assert "sent 120 quotes" in result.stderr
    records = asyncio.run(read_topic(stack.kafka_bootstrap[0], topic))
    lines = sample.read_text().splitlines()[1:]

    FIELDS = ("symbol", "ts", "price", "volume", "source")

    def fields(key: bytes, quote: dict) -> tuple:
        return key, quote["symbol"], quote["ts"], quote["price"], quote["volume"], quote["source"]

    published = sorted(fields(r.key, orjson.loads(r.value)) for r in records)
    assert published == sorted(
        (s.encode(), s, int(t), float(p), float(v), "csv")
        for s, t, p, v in (line.split(",") for line in lines)
    )
    # Nothing else on the record but the id the producer gives each quote.
    assert all(set(orjson.loads(r.value)) == {*FIELDS, "id"} for r in records)

    strict = run(
        [str(BIN / "stockapp"), "produce", "--source", "csv", "--file", str(bad), "--strict"],
        env=env,
    )
    assert strict.returncode == 1 and "bad.csv:122: price must be > 0" in strict.stderr


async def test_alphavantage_polls_publish_increments(stack, unique):
    from tests.fake_alphavantage import BAD_SYMBOL, FakeAlphaVantage, global_quote

    server = FakeAlphaVantage()
    url = await server.start()
    server.queue(
        "GLOBAL_QUOTE",
        "IBM",
        global_quote("IBM", 190.0, 1000, "2026-01-05"),
        global_quote("IBM", 190.2, 1500, "2026-01-05"),
        global_quote("IBM", 190.1, 1600, "2026-01-05"),
    )
    server.queue("GLOBAL_QUOTE", "NOPE", BAD_SYMBOL)
    topic = f"av.{unique}.quotes"
    env = {
        **os.environ,
        **topic_env(topic),
        "STOCKAPP_ALPHA_VANTAGE_URL": url,
        "ALPHA_VANTAGE_API_KEY": "TOPSECRET",
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "stockapp"),
            "produce",
            "--source",
            "alphavantage",
            "--symbols",
            "IBM,NOPE",
            "--every",
            "1",
            "--count",
            "3",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        finally:
            if proc.returncode is None:  # timed out: never leave the poller running
                proc.kill()
                await proc.wait()
    finally:
        await server.stop()
    err_text = (out + err).decode()
    assert proc.returncode == 0, err_text
    assert "sent 3 quotes (IBM 3)" in err_text and "bad symbols: NOPE" in err_text
    assert "TOPSECRET" not in err_text
    records = await read_topic(stack.kafka_bootstrap[0], topic)
    volumes = [orjson.loads(r.value)["volume"] for r in sorted(records, key=lambda r: r.offset)]
    assert volumes == [0.0, 500.0, 100.0]


def _sent(stderr: str) -> tuple[int, int]:
    sent, failed, _ = _summary(stderr)
    return sent, failed


def _summary(stderr: str) -> tuple[int, int, int]:
    """(sent, failed, resent) from the summary line."""
    line = next(x for x in stderr.splitlines() if x.startswith("produce: sent "))
    match = re.search(r"sent (\d+) quotes .*; (\d+) failed(?:; (\d+) resent)?", line)
    assert match, line
    return int(match[1]), int(match[2]), int(match[3] or 0)


def test_sigterm_flushes_and_summarises(stack, unique):
    topic = f"term.{unique}.quotes"
    env = {
        **os.environ,
        **topic_env(topic),
    }
    proc = subprocess.Popen(
        [str(BIN / "stockapp"), "produce", "--rate", "500"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    sent, failed = _sent(err)
    assert sent > 500 and failed == 0
    assert len(asyncio.run(read_topic(stack.kafka_bootstrap[0], topic))) == sent


def test_producer_rides_out_a_broker_restart(stack, unique, tmp_path):
    """A private Kafka on free ports is stopped and started under a running producer."""
    from stockapp.devstack import processes

    port, stack_dir = free_port(), tmp_path / "stack"
    (stack_dir / "kafka").mkdir(parents=True)
    os.symlink(stack.stack_dir / "kafka" / "lib", stack_dir / "kafka" / "lib")
    topic = f"restart.{unique}.quotes"
    env = {
        **os.environ,
        "STOCKAPP_STACK_DIR": str(stack_dir),
        "STOCKAPP_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "STOCKAPP_STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
        **topic_env(topic),
    }
    from stockapp.devstack.kafka import kafka_server
    from stockapp.devstack.settings import load_devstack_settings

    def kafka(action: str) -> None:
        old = dict(os.environ)
        os.environ.update(env)
        try:
            server = kafka_server(load_devstack_settings())
            if action == "start":
                from stockapp.devstack.__main__ import _wait_ready
                from stockapp.devstack.java import find_java

                processes.spawn(
                    server.prepare(server, find_java()), server.pid_file, server.console_log
                )
                _wait_ready(server, time.monotonic() + 120)
            else:
                processes.stop(server.pid_file)
        finally:
            os.environ.clear()
            os.environ.update(old)

    kafka("start")
    proc = None
    try:
        # stderr to a file: a pipe nobody reads while the broker is down fills up and blocks
        # the producer on its own warnings.
        log = tmp_path / "produce.log"
        proc = subprocess.Popen(
            [str(BIN / "stockapp"), "produce", "--rate", "200"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
        time.sleep(4)
        kafka("stop")
        time.sleep(5)
        kafka("start")
        time.sleep(20)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=150)
        err = log.read_text()
        assert proc.returncode == 0, err
        sent, failed, resent = _summary(err)
        assert failed == 0 and sent > 2000, err[-3000:]  # it went on after the restart
        # Nothing lost; a duplicate is only possible for a quote the summary says was resent.
        on_topic = len(asyncio.run(read_topic(f"127.0.0.1:{port}", topic)))
        assert sent <= on_topic <= sent + resent, (sent, resent, on_topic)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        kafka("stop")
