"""`stockapp produce` against the real broker: every simulated quote arrives, keyed, valid."""

import asyncio
import itertools
import os

import orjson

from stockapp.sources.simulator import Simulator
from stockapp.validation import parse_quote
from tests.helpers import BIN, REPO, read_topic, run

START = "2026-01-05T14:00:00+00:00"
START_MS = 1_767_621_600_000


def test_simulated_quotes_arrive_keyed_and_valid(stack, unique):
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
        ],
        env={
            "STOCKAPP_TOPIC_QUOTES": f"{topic}",
            "STOCKAPP_TOPIC_LATE": f"{topic}.l",
            "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
            "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "sent 3000 quotes (AAPL " in result.stderr and "0 failed" in result.stderr

    records = asyncio.run(read_topic(stack.kafka_bootstrap[0], topic))
    assert len(records) == 3000
    expected = list(
        itertools.islice(
            Simulator(["AAPL", "MSFT", "TSLA"], 9, 1000.0, START_MS, 60.0).ticks(), 3000
        )
    )
    for symbol in ("AAPL", "MSFT", "TSLA"):
        mine = sorted((r for r in records if r.key == symbol.encode()), key=lambda r: r.offset)
        assert len({r.partition for r in mine}) == 1
        quotes = [parse_quote(r.key, r.value, START_MS + 10**9, 0) for r in mine]
        assert [q.to_json() for q in quotes] == [t for t in expected if t["symbol"] == symbol]


def test_csv_replay_publishes_every_good_row(stack, unique, tmp_path):
    topic = f"csv.{unique}.quotes"
    sample = REPO / "docs" / "samples" / "ticks.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text(sample.read_text() + "AAPL,1767621900000,-2,5\n")
    env = {
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_LATE": f"{topic}.l",
        "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
        "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
    }
    result = run([str(BIN / "stockapp"), "produce", "--source", "csv", "--file", str(bad)], env=env)
    assert result.returncode == 0, result.stderr
    assert f"{bad}:122: skipped: price must be > 0" in result.stderr
    assert "sent 120 quotes" in result.stderr
    records = asyncio.run(read_topic(stack.kafka_bootstrap[0], topic))
    lines = sample.read_text().splitlines()[1:]
    assert sorted(r.value for r in records) == sorted(
        orjson.dumps(
            {"symbol": s, "ts": int(t), "volume": int(v), "price": float(p), "source": "csv"}
        )
        for s, t, p, v in (line.split(",") for line in lines)
    )

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
        "STOCKAPP_TOPIC_QUOTES": topic,
        "STOCKAPP_TOPIC_LATE": f"{topic}.l",
        "STOCKAPP_TOPIC_DLQ": f"{topic}.d",
        "STOCKAPP_TOPIC_CANDLES": f"{topic}.c",
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
