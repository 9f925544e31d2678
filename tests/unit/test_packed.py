"""Packed records: a raw-quotes record may carry a JSON array of its key's symbol's quotes.
The same quotes packed or one per record give the same candles, indicators and rows; a bad
element is dead-lettered with its index while its neighbours are applied; the replay guard
holds per quote."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stockapp.partitioning import partition_for
from stockapp.processing import RawRecord
from stockapp.validation import MAX_PACKED, Element, InvalidQuote, parse_record
from tests.unit.test_processing import T0, make

NOW = T0 + 30 * 86_400_000


def body(symbol: str, ts: int, price: float, volume: float = 10.0) -> dict:
    return {"symbol": symbol, "ts": ts, "price": price, "volume": volume}


def stream(n: int, symbols: list[str], seed: int) -> list[dict]:
    """Quotes in event-time order with some disorder inside the grace period."""
    rng = random.Random(seed)
    prices = dict.fromkeys(symbols, 100.0)
    out = []
    for i in range(n):
        symbol = rng.choice(symbols)
        prices[symbol] = round(max(1.0, prices[symbol] + rng.uniform(-1, 1)), 2)
        ts = T0 + i * 1_500 - (rng.randrange(3_000) if rng.random() < 0.1 else 0)
        out.append(body(symbol, ts, prices[symbol], float(rng.randint(1, 50))))
    return out


def one_by_one(quotes: list[dict]) -> list[RawRecord]:
    records = []
    for offset, quote in enumerate(quotes):
        key = quote["symbol"].encode()
        records.append(RawRecord(key, orjson.dumps(quote), partition_for(key, 8), offset))
    return records


def packed(quotes: list[dict], size: int) -> list[RawRecord]:
    """Consecutive quotes of a symbol packed up to ``size`` per record, in stream order (what
    `stockapp produce --pack` does with the quotes due together)."""
    records: list[RawRecord] = []
    pending: dict[str, list[dict]] = {}
    offset = 0

    def flush(symbol: str) -> None:
        nonlocal offset
        items = pending.pop(symbol)
        key = symbol.encode()
        records.append(RawRecord(key, orjson.dumps(items), partition_for(key, 8), offset))
        offset += 1

    for quote in quotes:
        pending.setdefault(quote["symbol"], []).append(quote)
        if len(pending[quote["symbol"]]) == size:
            flush(quote["symbol"])
    for symbol in list(pending):
        flush(symbol)
    return records


async def run(records: list[RawRecord], batch: int = 50):
    proc, effects, table, _ = make(NOW)
    for i in range(0, len(records), batch):
        await proc.process(records[i : i + batch])
    return proc, effects, table


def candles(effects) -> list[tuple]:
    return sorted(
        (c.symbol, c.interval, c.start, c.open, c.high, c.low, c.close, c.volume, c.trades)
        + tuple(sorted((k, repr(v)) for k, v in c.indicators.items()))
        for c in effects.candles
    )


def ticks(effects) -> list[tuple]:
    return sorted(
        (q.quote.symbol, q.quote.ts, q.quote.price, q.quote.volume) for q in effects.quotes
    )


def test_a_record_is_one_quote_or_an_array_of_the_keys_quotes():
    one = orjson.dumps(body("AAPL", T0, 10.0))
    (quote,) = parse_record(b"AAPL", one, NOW, 300_000)
    assert (quote.symbol, quote.price) == ("AAPL", 10.0)
    items = parse_record(
        b"AAPL",
        orjson.dumps([body("AAPL", T0, 10.0), body("MSFT", T0, 5.0), 7, body("AAPL", T0, -1)]),
        NOW,
        300_000,
    )
    assert items[0].price == 10.0
    assert [type(i).__name__ for i in items] == ["Quote", "Element", "Element", "Element"]
    assert items[1].reason.startswith("element 1: record key 'AAPL' must equal")
    assert items[2] == Element(2, 7, "element 2: must be a JSON object, got int")
    assert items[3].reason == "element 3: price must be > 0, got -1"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[]", "record is an empty array"),
        (b"3", "record must be a JSON object or array, got int"),
        (b"[1", "not valid JSON"),
        (orjson.dumps([body("AAPL", T0, 1.0)] * (MAX_PACKED + 1)), "record packs 10001 quotes"),
    ],
)
def test_a_record_unusable_as_a_whole_is_refused_whole(value: bytes, reason: str):
    with pytest.raises(InvalidQuote, match=reason.replace("[", r"\[")):
        parse_record(b"AAPL", value, NOW, 300_000)


@hsettings(max_examples=25, deadline=None)
@given(size=st.integers(1, 40), seed=st.integers(0, 10_000), batch=st.integers(1, 60))
async def test_packed_records_give_what_the_same_quotes_give_one_by_one(size, seed, batch):
    quotes = stream(400, ["AAPL", "MSFT", "TSLA"], seed)
    _, single, _ = await run(one_by_one(quotes), batch=50)
    proc, many, table = await run(packed(quotes, size), batch=batch)
    assert candles(many) == candles(single)
    assert ticks(many) == ticks(single)
    assert proc.stats["quotes"] == 400 and proc.stats["late"] == 0
    # Two quotes of one record are two rows: their keys differ by the index.
    keys = {(q.partition, q.offset, q.index) for q in many.quotes}
    assert len(keys) == 400


async def test_a_bad_element_is_dead_lettered_with_its_index_and_its_neighbours_go_on():
    good = [body("AAPL", T0 + i * 20_000, 10.0 + i) for i in range(6)]
    bad = {"symbol": "AAPL", "ts": T0 + 50_000, "price": "ten", "volume": 1}
    record = RawRecord(b"AAPL", orjson.dumps([*good[:3], bad, *good[3:]]), 0, 7)
    proc, effects, table, _ = make(NOW)
    await proc.process([record])
    (dead,) = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert dead[1] == b"AAPL" and orjson.loads(dead[2]) == bad  # the element, not the record
    assert dead[3]["stockapp.reason"] == b"element 3: price must be a number, got str"
    assert dead[3]["stockapp.source.offset"] == b"7"
    assert dead[3]["stockapp.source.index"] == b"3"
    assert [(q.offset, q.index) for q in effects.quotes] == [(7, i) for i in (0, 1, 2, 4, 5, 6)]
    _, single, _ = await run(one_by_one(good))
    assert candles(effects) == candles(single)
    assert proc.stats["invalid"] == 1 and proc.stats["quotes"] == 6


async def test_a_late_element_is_forwarded_alone_with_its_index():
    proc, effects, table, _ = make(NOW)
    await proc.process([RawRecord(b"AAPL", orjson.dumps([body("AAPL", T0 + 70_000, 10.0)]), 0, 0)])
    late = [body("AAPL", T0 + 80_000, 11.0), body("AAPL", T0 + 1_000, 9.0)]  # 14:00 closed
    await proc.process([RawRecord(b"AAPL", orjson.dumps(late), 0, 1)])
    (forwarded,) = [p for p in effects.published if p[0] == "quotes.late"]
    assert orjson.loads(forwarded[2])["price"] == 9.0
    assert forwarded[3]["stockapp.source.index"] == b"1"
    assert forwarded[3]["stockapp.reason"] == b"candle already closed for 1m"


async def test_a_replayed_packed_record_changes_nothing():
    quotes = stream(200, ["AAPL", "MSFT"], 3)
    records = packed(quotes, 25)
    proc, effects, table = await run(records)
    before = dict(table)
    written = len(effects.quotes)
    proc.forget()  # as after a restart: state comes back from the table
    for i in range(0, len(records), 7):
        await proc.process(records[i : i + 7])
    assert len(effects.quotes) == written and dict(table) == before
    assert proc.stats["duplicates"] == 200


def test_the_guard_holds_per_element_of_the_record_at_the_last_offset():
    from stockapp.tables.candle import Bar
    from stockapp.tables.symbol_state import SymbolState

    proc, *_ = make(NOW)
    state = SymbolState("AAPL", proc.spec)
    closed: list = []
    for index in range(3):
        assert not state.apply(Bar.tick(T0 + index, 10.0, 1.0), 5, closed, None, index).duplicate
    again = [state.apply(Bar.tick(T0 + i, 10.0, 1.0), 5, closed, None, i) for i in range(4)]
    assert [a.duplicate for a in again] == [True, True, True, False]
    restored = SymbolState.from_dict(state.to_dict(), proc.spec)
    assert (restored.last_offset, restored.last_index) == (5, 3)
    older = state.to_dict()
    del older["last_index"]  # a state written before packed records: one quote per record
    assert SymbolState.from_dict(older, proc.spec).apply(Bar.tick(T0, 1, 1), 5, closed).duplicate


def test_the_producer_packs_each_symbols_quotes_in_order():
    from stockapp.models import Quote
    from stockapp.produce import auto_pack
    from stockapp.settings import load_settings
    from stockapp.sources.factory import SourceSpec
    from stockapp.sources.producer import QuoteProducer

    quotes = [Quote(s, T0 + i, 10.0 + i, 1.0) for i, s in enumerate("AABABAAAB")]
    producer = QuoteProducer(load_settings(), pack=3)
    records = [(symbol, [q.ts - T0 for q in group]) for symbol, group in producer._records(quotes)]
    assert records == [("A", [0, 1, 3]), ("B", [2, 4, 8]), ("A", [5, 6, 7])]
    assert all(q.id for q in quotes)  # ids given: a resend is dropped as a repeat
    single = QuoteProducer(load_settings(), pack=1)._records(quotes[:2])
    assert [len(group) for _, group in single] == [1, 1]
    assert auto_pack(SourceSpec(rate=0)) == 100 and auto_pack(SourceSpec(rate=5000)) == 100
    assert auto_pack(SourceSpec(rate=20)) == 1 and auto_pack(SourceSpec(kind="csv")) == 1
