"""`stockapp produce` against the real broker: every simulated quote arrives, keyed, valid."""

import asyncio
import itertools

from stockapp.sources.simulator import Simulator
from stockapp.validation import parse_quote
from tests.helpers import BIN, read_topic, run

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
