"""The processor's parts alone: a batch applied (pure and synchronous), the state cache, the
timer's closes and the stream port. The processor's own tests (test_processing.py) check the
parts wired together; these pin down what each part does by itself."""

from __future__ import annotations

import inspect

import orjson

from stockapp.batch import Applier, BatchResult
from stockapp.partitioning import partition_for
from stockapp.processing import QuoteProcessor, RawRecord
from stockapp.settings import load_settings
from stockapp.state_cache import StateCache
from stockapp.stream_port import Detached, StreamPort
from stockapp.symbol_quota import SymbolQuota
from stockapp.tables.candle import Bar
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from stockapp.timer_close import TIMER_CHUNK_SYMBOLS, TimerCloser
from stockapp.validation import Reason
from tests.fakes import Effects, Table

T0 = 1_767_621_600_000  # 2026-01-05 14:00 UTC
NOW = (T0 + 3_600_000) / 1000


def tick(symbol: str, ts: int, price: float, offset: int) -> RawRecord:
    key = symbol.encode()
    body = {"symbol": symbol, "ts": ts, "price": price, "volume": 10}
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


def parts(table: dict | None = None, **overrides):
    settings = load_settings().model_copy(update={"intervals": ("1m",), **overrides})
    spec = CandleSpec.build(settings.intervals, settings.market_timezone, 5)
    cache = StateCache({} if table is None else table, spec, 10, 8, lambda: NOW)
    quota = SymbolQuota(
        frozenset(settings.symbols_allowed) or None, settings.max_symbols, cache, lambda: None
    )
    applier = Applier("quotes.dlq", "quotes.late", 10_000, settings.state_max_bytes, quota)
    return applier, cache, spec


def test_apply_batch_is_synchronous_and_writes_nothing():
    assert not inspect.iscoroutinefunction(Applier.apply_batch)
    table: dict = {}
    applier, cache, _ = parts(table)
    records = [
        tick("AAPL", T0, 10.0, 0),
        tick("AAPL", T0 + 30_000, 12.0, 1),
        RawRecord(b"AAPL", b"junk", 0, 2),
        tick("AAPL", T0 + 61_000, 11.0, 3),
        tick("AAPL", T0 + 1_000, 9.0, 4),  # out of order, inside the grace period
    ]
    result = applier.apply_batch(cache, records, NOW)
    assert table == {}  # the checkpoint stores; the batch only says what to store
    assert isinstance(result, BatchResult)
    assert [(r.quote.price, r.offset) for r in result.rows] == [
        (10.0, 0),
        (12.0, 1),
        (11.0, 3),
        (9.0, 4),
    ]
    assert result.positions == {partition_for(b"AAPL", 8): 4, 0: 2}
    assert [o.kind for o in result.outputs] == [Reason.NOT_JSON]
    assert result.closed == []  # inside the grace period, the 14:00 candle still forms
    assert result.touched == {"AAPL"}
    stored = SymbolState.from_dict(orjson.loads(result.states["AAPL"]), cache.spec)
    (forming,) = stored.forming_candles("1m")[:1]
    assert (forming.open, forming.high, forming.low, forming.close) == (10.0, 12.0, 9.0, 12.0)
    assert result.stats.as_dict() == {"quotes": 4, "invalid": 1, "stored_records": 5}


def test_a_result_is_frozen():
    applier, cache, _ = parts()
    result = applier.apply_batch(cache, [tick("AAPL", T0, 10.0, 0)], NOW)
    try:
        result.closed = []  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("BatchResult must be frozen")


def test_the_cache_loads_each_state_one_way():
    spec = CandleSpec.build(("1m",), "UTC", 5)
    stored = SymbolState("MSFT", spec)
    stored.apply(Bar.tick(T0, 5.0, 1.0), 7, [])
    table = {b"MSFT": orjson.dumps(stored.to_dict())}
    cache = StateCache(table, spec, 10, 8, lambda: NOW)
    assert cache.load("NEW", create=False) is None and "NEW" not in cache
    new = cache.load("NEW")
    assert new is not None and new.last_offset == -1
    msft = cache.load("MSFT")
    assert msft is not None and msft.last_offset == 7
    assert cache.load("MSFT") is msft  # from memory the second time
    assert list(cache.states) == ["NEW", "MSFT"]  # least recently used first
    assert cache.load("NEW") is new and list(cache.states) == ["MSFT", "NEW"]
    assert cache.peek("OTHER", lambda: None) is None and "OTHER" not in cache


def test_the_cache_keeps_live_states_and_watches_forming_ones_it_drops():
    spec = CandleSpec.build(("1m",), "UTC", 5)
    cache = StateCache({}, spec, 1, 8, lambda: NOW)
    old = cache.load("OLD")
    assert old is not None
    old.apply(Bar.tick(T0, 1.0, 1.0), 0, [])  # an hour before the clock: not live
    live = cache.load("LIVE")
    assert live is not None
    live.apply(Bar.tick(int(NOW * 1000) - 1000, 1.0, 1.0), 0, [])
    assert cache.evict() == 1
    assert list(cache.states) == ["LIVE"] and "OLD" in cache.watch


def test_the_timer_closes_in_chunks_each_stored_before_the_next():
    spec = CandleSpec.build(("1m",), "UTC", 5)
    cache = StateCache({}, spec, 10_000, 8, lambda: NOW)
    symbols = [f"S{i:04d}" for i in range(TIMER_CHUNK_SYMBOLS + 3)]
    for symbol in symbols:
        state = cache.load(symbol)
        assert state is not None
        state.apply(Bar.tick(int(NOW * 1000) - 50_000, 1.0, 1.0), 0, [])
    closer = TimerCloser(cache, spec.grace_ms, 8, 60.0)
    # Busy (in a run of full batches), or a partition with records waiting: nothing closes.
    assert list(closer.close(NOW + 10, None, None, {}, busy=lambda: True)) == []
    waiting = dict.fromkeys(range(8), 1)
    assert list(closer.close(NOW + 10, waiting, None, {}, busy=lambda: False)) == []
    # Live symbols: 10 s after their minute ended, the clock closes it.
    chunks = closer.close(NOW + 10, None, None, {}, busy=lambda: False)
    first_closed, first_touched = next(chunks)
    assert len(first_touched) == TIMER_CHUNK_SYMBOLS
    rest = list(chunks)
    assert [len(touched) for _, touched in rest] == [3]
    assert len(first_closed) + sum(len(c) for c, _ in rest) == len(symbols)


async def test_a_detached_port_is_a_stream_port_that_knows_nothing():
    port: StreamPort = Detached()
    assert not port.knows_backlog and port.durable is None
    assert port.owned() is None and port.generation() is None
    assert await port.topic_id() is None and await port.seeds(["AAPL"]) == {}
    effects = Effects()
    proc = QuoteProcessor(load_settings(), Table(effects), effects, effects.publish)
    assert isinstance(proc.port, Detached)
    # Seven parameters, no optional callables: what the stream tells comes through the port.
    params = inspect.signature(QuoteProcessor).parameters
    assert list(params) == ["settings", "table", "writer", "publish", "clock", "port", "rules"]
