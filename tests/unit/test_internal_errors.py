"""A fault of stockapp's own code for one symbol (the signal rules, fitting a state to its
budget) is not an outage: that symbol's records of the batch go to the dead-letter topic with
reason ``internal``, logged once with the traceback and counted, and the rest of the batch and
the partition go on. Infrastructure failures are still retried."""

from __future__ import annotations

import logging

import orjson
import pytest

import stockapp.rule_runner as rule_runner
from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from stockapp.tables.signals import BUILT_IN, parse_rule
from stockapp.tables.signals.book import RuleBook
from tests.fakes import Effects, Table
from tests.oracle import SIGNAL_RULES

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC
MINUTE = 60_000


def tick(symbol: str, ts: int, price: float, offset: int) -> RawRecord:
    key = symbol.encode()
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": 10}
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


def make() -> tuple[QuoteProcessor, Effects, Table]:
    effects = Effects()
    table = Table(effects)
    settings = load_settings().model_copy(update={"intervals": ("1m",)})
    proc = QuoteProcessor(
        settings,
        table,
        effects,
        effects.publish,
        clock=lambda: (T0 + 3_600_000) / 1000,
        rules=RuleBook(
            BUILT_IN, [parse_rule({**r, "interval": "1m"}, ["1m"]) for r in SIGNAL_RULES]
        ),
    )
    return proc, effects, table


@pytest.fixture
def rules_fail_for_tsla(monkeypatch: pytest.MonkeyPatch) -> None:
    real = rule_runner.on_close

    def on_close(state_rules, rules, candle):
        if candle.symbol == "TSLA":
            raise ZeroDivisionError("a bug in a rule")
        return real(state_rules, rules, candle)

    monkeypatch.setattr(rule_runner, "on_close", on_close)


def batch(first_offset: int = 0) -> list[RawRecord]:
    out = []
    for n, minute in enumerate(range(3)):
        ts = T0 + minute * MINUTE + 1000
        out += [tick("AAPL", ts, 10.0 + n, first_offset + 2 * n)]
        out += [tick("TSLA", ts, 20.0 + n, first_offset + 2 * n + 1)]
    return out


async def test_a_bug_for_one_symbol_dead_letters_its_records_and_the_rest_goes_on(
    rules_fail_for_tsla: None, caplog: pytest.LogCaptureFixture
) -> None:
    proc, effects, table = make()
    records = batch()
    with caplog.at_level(logging.ERROR, logger="stockapp.processing"):
        applied = await proc.process_until_done(records)
    assert applied == records  # acked: nothing is retried
    assert proc.stats.batch_retries == 0 and proc.stuck is None
    dead = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert [p[1] for p in dead] == [b"TSLA"] * 3
    assert all(
        p[3]["stockapp.reason"].startswith(b"internal error: ZeroDivisionError") for p in dead
    )
    assert proc.stats.internal_errors == 3 and proc.stats.invalid == 3
    assert proc.invalid_by_reason == {"internal": 3}
    # Its neighbour is stored whole; the faulty symbol's state is left as it was (none).
    assert table.state(b"AAPL")["last_offset"] == 4 and b"TSLA" not in table
    assert {c.symbol for c in effects.candles} == {"AAPL"}
    [logged] = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert logged.exc_info is not None  # the traceback, once

    # The next batch of the symbol fails the same way: one line, no traceback this time.
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="stockapp.processing"):
        await proc.process_until_done(batch(first_offset=6))
    [again] = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert again.exc_info is None and proc.stats.internal_errors == 6


async def test_an_infrastructure_failure_is_still_retried(rules_fail_for_tsla: None) -> None:
    proc, effects, table = make()
    real_write, calls = effects.write, []

    async def failing_write(quotes, candles, signals=()):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("Cassandra away")
        return await real_write(quotes, candles, signals)

    effects.write = failing_write  # type: ignore[method-assign]
    await proc.process_until_done(batch(), max_delay=0.001)
    assert proc.stats.batch_retries == 1 and len(calls) == 2
    assert table.state(b"AAPL")["last_offset"] == 4
