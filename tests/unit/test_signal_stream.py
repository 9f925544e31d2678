"""Signals through the processor: over a long seeded tick stream, every signal the stream fires
equals the same rule by pandas over `ta`'s columns of the pandas-resampled candles; a restart,
a failed batch and a crash before the state write repeat keys and never lose or add one;
provisional firings are once per candle and never stored."""

from __future__ import annotations

import random

import orjson
import pytest

from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from stockapp.tables.signals import BUILT_IN, parse_rule
from stockapp.tables.signals.book import RuleBook, rule_key
from stockapp.tables.signals.signal import Signal
from tests.fakes import Effects, Table
from tests.oracle import SIGNAL_RULES, Tick, expected_candles, expected_signals

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC
SYMBOLS = ("AAPL", "MSFT", "TSLA")
MINUTE = 60_000


def ticks(seed: int, minutes: int) -> list[Tick]:
    """1-6 ticks per symbol and minute, in event-time order, a random walk per symbol."""
    rng = random.Random(seed)
    price = {symbol: 100.0 for symbol in SYMBOLS}
    out = []
    for minute in range(minutes):
        for symbol in SYMBOLS:
            offsets = sorted(rng.sample(range(1, MINUTE), rng.randint(1, 6)))
            for offset in offsets:
                price[symbol] *= 1 + rng.gauss(0, 0.004)
                volume = float(rng.randint(1, 500))
                out.append(Tick(symbol, T0 + minute * MINUTE + offset, price[symbol], volume))
    # One candle well after: every candle of the stream closes (the oracle leaves it out).
    out += [Tick(symbol, T0 + (minutes + 6) * MINUTE + 30_000, 100.0, 1.0) for symbol in SYMBOLS]
    return out


def records(stream: list[Tick]) -> list[RawRecord]:
    out, offsets = [], {}
    for t in stream:
        key = t.symbol.encode()
        part = partition_for(key, 8)
        offsets[part] = offsets.get(part, -1) + 1
        body = {"symbol": t.symbol, "ts": t.ts, "price": t.price, "volume": t.volume}
        out.append(RawRecord(key, orjson.dumps(body), part, offsets[part]))
    return out


def processor(effects: Effects, table: Table, book: RuleBook, now_ms: int) -> QuoteProcessor:
    settings = load_settings().model_copy(update={"intervals": ("1m", "5m")})
    return QuoteProcessor(
        settings, table, effects, effects.publish, clock=lambda: now_ms / 1000, rules=book
    )


def user_rules(interval: str) -> list:
    return [parse_rule({**raw, "interval": interval}, [interval]) for raw in SIGNAL_RULES]


def expected(stream: list[Tick], specs: list, interval: str) -> tuple[set, set]:
    """(firings, near ties) as (symbol, rule, start), candles still forming left out."""
    bars = expected_candles(stream, interval, "America/New_York")
    last = bars.groupby("symbol")["start"].transform("max")
    rules = [spec.to_json() for spec in specs if spec.interval == interval]
    return expected_signals(bars[bars["start"] < last], rules)


def firings(signals: list[Signal]) -> set:
    return {(s.symbol, s.rule, s.start) for s in signals}


async def run(stream, book, batch=400, restart_every=0):
    effects = Effects()
    table = Table(effects)
    now = stream[-1].ts + 10 * MINUTE
    proc = processor(effects, table, book, now)
    recs = records(stream)
    for n, start in enumerate(range(0, len(recs), batch)):
        await proc.process(recs[start : start + batch])
        if restart_every and n % restart_every == restart_every - 1:
            proc.forget()  # as after a restart: states (and rule states) from the table
    return effects


def published_signals(effects: Effects) -> list[tuple[bytes, dict]]:
    return [
        (key, orjson.loads(value))
        for topic, key, value, _ in effects.published
        if topic == "signals"
    ]


@pytest.mark.parametrize(("seed", "restart_every"), [(11, 0), (12, 3)])
async def test_every_signal_of_the_stream_equals_the_pandas_ta_oracle(seed, restart_every):
    stream = ticks(seed, 1200)
    book = RuleBook(BUILT_IN, user_rules("1m"))
    effects = await run(stream, book, restart_every=restart_every)
    ours = firings(effects.signals)
    for interval in ("1m", "5m"):
        fires, ties = expected(stream, list(book.rules), interval)
        mine = {f for f in ours if _interval_of(book, f) == interval}
        assert mine - ties == fires - ties, interval
        assert len(ties) <= 10
    assert len(ours) > 300  # the stream exercises the rules
    # Stored once each, published once each (no rule is provisional), keyed alike.
    keys = [s.key for s in effects.signals]
    assert len(keys) == len(set(keys))
    assert sorted(k.decode() for k, _ in published_signals(effects)) == sorted(keys)
    for key, body in published_signals(effects):
        assert Signal.from_json(body).key == key.decode() == body["key"]
    assert not any(s.provisional for s in effects.signals)


def _interval_of(book: RuleBook, firing: tuple) -> str:
    spec = book.get(firing[1])
    assert spec is not None
    return spec.interval


async def test_a_crash_after_publishing_repeats_keys_and_loses_none():
    """The table write (the replay guard) fails after the signals went out: the retry fires the
    same signals again with the same keys and payloads; by key, nothing is lost or doubled."""
    stream = ticks(21, 300)
    book = RuleBook(BUILT_IN, user_rules("1m"))
    clean = await run(stream, book)

    effects = Effects()
    table = Table(effects)
    proc = processor(effects, table, book, stream[-1].ts + 10 * MINUTE)
    real_set, fails = Table.__setitem__, {"left": 3}

    def flaky_set(self, key, value):
        if fails["left"] and any(t == "signals" for t, *_ in effects.published):
            fails["left"] -= 1
            raise RuntimeError("changelog unreachable")
        real_set(self, key, value)

    table.__class__ = type("FlakyTable", (Table,), {"__setitem__": flaky_set})
    recs = records(stream)
    for start in range(0, len(recs), 400):
        await proc.process_until_done(recs[start : start + 400], max_delay=0.001)
    assert proc.stats["batch_retries"] == 3
    assert firings(effects.signals) == firings(clean.signals)
    sent = published_signals(effects)
    assert len(sent) > len(set(k for k, _ in sent))  # the retries sent some again ...
    by_key: dict[bytes, dict] = {}
    for key, body in sent:
        assert by_key.setdefault(key, body) == body  # ... each time the same signal
    assert set(by_key) == {k for k, _ in published_signals(clean)}


def tick_record(ts: int, price: float, offset: int) -> RawRecord:
    body = {"symbol": "AAPL", "ts": ts, "price": price, "volume": 1.0}
    return RawRecord(b"AAPL", orjson.dumps(body), partition_for(b"AAPL", 8), offset)


async def test_a_provisional_rule_fires_once_per_forming_candle_and_is_not_stored():
    rule = parse_rule(
        {
            "name": "over_100",
            "kind": "crosses_above",
            "left": "close",
            "right": 100,
            "interval": "1m",
            "provisional": True,
        },
        ["1m"],
    )
    effects = Effects()
    proc = processor(effects, Table(effects), RuleBook((), [rule]), T0 + 3_600_000)
    # The first tick of the second candle closes the first (past its end and the grace).
    prices = [(0, 99.0), (70, 99.5), (71, 100.5), (72, 101.0), (73, 99.0), (74, 100.7)]
    for offset, (second, price) in enumerate(prices):
        await proc.process([tick_record(T0 + second * 1000, price, offset)])
    sent = [body for _, body in published_signals(effects)]
    assert [(s["start"], s["provisional"]) for s in sent] == [(T0 + MINUTE, True)]
    assert sent[0]["key"] == f"AAPL|1m|over_100|{T0 + MINUTE}|provisional"
    assert sent[0]["values"] == {"close": 100.5, "level": 100.0}
    assert effects.signals == []  # news, not history
    # The candle closes above the level: the final firing, stored and published.
    await proc.process([tick_record(T0 + 130_000, 100.9, len(prices))])
    final = [body for _, body in published_signals(effects)][1:]
    assert [(s["start"], s["provisional"]) for s in final] == [(T0 + MINUTE, False)]
    assert [s.key for s in effects.signals] == [f"AAPL|1m|over_100|{T0 + MINUTE}"]


async def test_rules_changed_mid_stream_start_afresh_and_deleted_rules_leave_no_state():
    breakout = {"name": "hi", "kind": "breakout_up", "lookback": 3, "interval": "1m"}
    book = RuleBook((), [parse_rule(breakout, ["1m"])])
    effects = Effects()
    table = Table(effects)
    proc = processor(effects, table, book, T0 + 3_600_000)
    for minute in range(5):
        await proc.process([tick_record(T0 + minute * MINUTE + 10_000, 100.0 + minute, minute)])
    (old_key,) = book.keys
    assert old_key in table.state(b"AAPL")["rules"]
    # The same name with another lookback: another key, its own state.
    assert book.replace([parse_rule({**breakout, "lookback": 2}, ["1m"])])
    assert not book.replace([parse_rule({**breakout, "lookback": 2}, ["1m"])])
    (new_key,) = book.keys
    assert new_key != old_key
    await proc.process([tick_record(T0 + 5 * MINUTE + 10_000, 90.0, 5)])
    assert set(table.state(b"AAPL")["rules"]) == {new_key}
    assert table.state(b"AAPL")["rules"][new_key] == [104.0]  # one candle seen, by the new rule


async def test_rules_and_marks_of_rules_no_longer_in_force_leave_every_state():
    """A provisional rule's mark and a rule's state used to stay in a symbol's state when
    the rule was deleted or changed, piling up with each change (unbounded)."""
    provisional = {
        "name": "up",
        "kind": "crosses_above",
        "left": "close",
        "right": 100.5,
        "interval": "1m",
        "provisional": True,
    }
    book = RuleBook((), [parse_rule(provisional, ["1m", "5m"])])
    effects = Effects()
    table = Table(effects)
    proc = processor(effects, table, book, T0 + 3_600_000)
    for minute in range(2):  # the second minute's forming candle crosses: a mark
        await proc.process([tick_record(T0 + minute * MINUTE + 10_000, 100.0 + minute, minute)])
    stored = table.state(b"AAPL")
    assert stored["marks"] and stored["rules"]
    for n in range(5):  # changes, then a deletion: nothing of them is kept
        book.replace([parse_rule({**provisional, "right": 101.0 + n}, ["1m", "5m"])])
        await proc.process([tick_record(T0 + (3 + n) * MINUTE + 10_000, 99.0, 3 + n)])
    book.replace([])
    await proc.process([tick_record(T0 + 9 * MINUTE + 10_000, 99.0, 9)])
    stored = table.state(b"AAPL")
    assert stored["marks"] == {} and stored["rules"] == {}


def test_rule_keys_follow_the_definition_and_built_in_names_win():
    spec = BUILT_IN[0]
    clash = parse_rule({**spec.to_json(), "interval": "1m"}, ["1m"])
    book = RuleBook(BUILT_IN, [clash])
    assert book.user == () and book.get(spec.name) is spec
    assert rule_key(spec).startswith(f"{spec.name}:") and rule_key(spec) != rule_key(clash)
    assert book.applying("AAPL", "1m") == ()
    assert len(book.applying("AAPL", "5m")) == len(BUILT_IN)


def test_signal_json_round_trips():
    signal = Signal("AAPL", "5m", "golden_cross", "crosses_above", T0, T0 + 300_000, {"a": 1.0})
    assert Signal.from_json(orjson.loads(orjson.dumps(signal.to_json()))) == signal


def test_an_empty_book_reports_no_change_on_reload():
    book = RuleBook()
    assert book.rules == () and book.keys == frozenset()
    assert not book.replace([])
