"""The processor's bounds: the state budget, the number of symbols a worker holds, and the
memory of states with forming candles (fake sinks, fake clock)."""

import orjson

from stockapp.tables.quote_ids import BAR_IDS_MAX
from tests.unit.test_processing import T0, make, quote_record, tick


def bar(symbol: str, offset: int, i: int, price: float = 10.0) -> object:
    ts = T0 + i * 1000
    return quote_record(
        symbol,
        offset,
        ts=ts,
        price=price,
        open=price,
        high=price + 0.123456789,
        low=price - 0.123456789,
        volume=5,
        bar_seconds=1,
        id=f"{symbol}:{ts}:1s:{'x' * 40}",
    )


async def test_a_record_that_would_pass_the_state_budget_is_dead_lettered_and_others_go_on():
    """A budget below what a full id memory takes: the bars past it are dead-lettered with
    the reason, the state written is the last one within the budget, the other symbol's
    quotes and the next batch go on."""
    proc, effects, table, _ = make(T0 + 86_400_000, state_max_bytes=20_000)
    records = [bar("BIG", i, i) for i in range(BAR_IDS_MAX)]
    records.append(tick("SMALL", T0 + 5_000, 20.0, BAR_IDS_MAX))
    await proc.process(records)
    dead = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert dead, "some bars must be over the budget"
    reason = dead[0][3]["stockapp.reason"].decode()
    assert reason.startswith("the state of BIG would be ") and "STOCKAPP_STATE_MAX_BYTES" in reason
    kept = BAR_IDS_MAX - len(dead)
    assert proc.stats["over_budget"] == len(dead) and proc.stats["quotes"] == kept + 1
    assert proc.invalid_by_reason == {"over_limit": len(dead)}
    assert len(table[b"BIG"]) <= 20_000 and proc.largest_state()[0] <= 20_000
    # The raw rows are those of the quotes kept, nothing of the refused ones.
    refused = {int(p[3]["stockapp.source.offset"]) for p in dead}
    assert {q.offset for q in effects.quotes} == set(range(BAR_IDS_MAX + 1)) - refused
    state = table.state(b"BIG")
    assert state["last_offset"] == max(set(range(BAR_IDS_MAX)) - refused)
    (day,) = proc.forming("BIG", "1d")
    assert day[0].trades == kept
    assert table.state(b"SMALL")["last_offset"] == BAR_IDS_MAX
    # The next batch goes on: a tick without an id costs nothing of the budget.
    await proc.process([tick("BIG", T0 + 700_000, 11.0, BAR_IDS_MAX + 1)])
    assert table.state(b"BIG")["last_offset"] == BAR_IDS_MAX + 1


async def test_new_symbols_past_the_limit_are_dead_lettered_and_known_ones_go_on():
    proc, effects, table, _ = make(T0 + 3_600_000, max_symbols=2)
    await proc.process([tick("A", T0, 1.0, 0), tick("B", T0, 2.0, 1), tick("C", T0, 3.0, 2)])
    (dead,) = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert dead[1] == b"C"
    assert dead[3]["stockapp.reason"] == (
        b"this worker holds 2 symbols already (STOCKAPP_MAX_SYMBOLS=2); new symbol C refused"
    )
    assert set(table) == {b"A", b"B"} and proc.stats["symbols_refused"] == 1
    proc.forget()  # a rebalance: the count is taken again from the table
    await proc.process([tick("A", T0 + 1, 1.5, 3), tick("D", T0, 4.0, 4)])
    assert set(table) == {b"A", b"B"} and proc.stats["symbols_refused"] == 2
    assert table.state(b"A")["last_offset"] == 3


async def test_only_allowed_symbols_are_processed():
    proc, effects, table, _ = make(T0 + 3_600_000, symbols_allowed=("AAPL",))
    await proc.process([tick("AAPL", T0, 1.0, 0), tick("JUNK", T0, 2.0, 1)])
    (dead,) = [p for p in effects.published if p[0] == "quotes.dlq"]
    assert dead[3]["stockapp.reason"] == b"symbol JUNK is not in STOCKAPP_SYMBOLS_ALLOWED"
    assert set(table) == {b"AAPL"}


async def test_states_with_forming_candles_leave_memory_and_close_as_if_they_never_had():
    """Thousands of symbols with a day candle forming each (a replay, not live): beyond the
    cache only a small entry per symbol stays in memory, and the timer closes every candle as
    a worker with a cache large enough for all does."""

    async def run(cache: int):
        proc, effects, table, clock = make(
            T0 + 86_400_000, state_cache_symbols=cache, idle_close_seconds=1.0
        )
        symbols = [f"F{i:04d}" for i in range(1500)]
        offset = 0
        for minute in range(3):
            for start in range(0, len(symbols), 300):
                batch = []
                for s in symbols[start : start + 300]:
                    batch.append(tick(s, T0 + minute * 60_000 + 1000, 10.0 + offset % 7, offset))
                    offset += 1
                await proc.process(batch)
                assert len(proc.states) <= cache
        clock.now += 2
        await proc.on_timer()  # quiet now: every candle closes
        assert len(proc.states) <= cache and not proc.watch
        return proc, effects, table

    small, small_effects, small_table = await run(40)
    big, big_effects, big_table = await run(100_000)
    assert small.stats["evicted"] > 1000 and big.stats["evicted"] == 0
    assert dict(small_table) == dict(big_table)
    assert [c.to_dict() for c in small_effects.candles] == [
        c.to_dict() for c in big_effects.candles
    ]
    assert len(small_effects.candles) == 1500 * (3 + 1 + 1 + 1 + 1)


async def test_the_table_holds_states_as_json_bytes():
    """The processor encodes states itself (it knows each record's size); they read as the
    JSON Faust's codec wrote before, so a changelog written by an earlier version loads."""
    proc, effects, table, _ = make(T0 + 3_600_000)
    await proc.process([tick("AAPL", T0, 10.0, 0)])
    assert isinstance(table[b"AAPL"], bytes) and orjson.loads(table[b"AAPL"])["v"] == 2


async def test_a_side_output_kafka_will_not_take_goes_without_its_bytes():
    """A dead letter the producer (or the broker) refuses as too large would be refused at
    every retry and stop the partition: it goes as its headers alone."""
    import asyncio

    from aiokafka.errors import MessageSizeTooLargeError
    from faust.exceptions import ProducerSendError

    proc, effects, table, _ = make(T0 + 3_600_000)
    real = effects.publish
    broker_refuses = asyncio.get_running_loop().create_future()
    broker_refuses.set_exception(MessageSizeTooLargeError())

    async def publish(topic, key, value, headers):
        if topic == "quotes.dlq" and value == b"junk-too-big-for-the-producer":
            try:
                raise MessageSizeTooLargeError()
            except MessageSizeTooLargeError as exc:
                raise ProducerSendError("Error while sending") from exc
        if topic == "quotes.dlq" and value == b"junk-too-big-for-the-topic":
            effects.published.append((topic, key, value, dict(headers)))
            return broker_refuses
        return await real(topic, key, value, headers)

    proc.checkpoint.publish = publish
    await proc.process(
        [
            quote_record("AAPL", 0, ts=T0, price=1.0, volume=1),
            type(tick("AAPL", T0, 1.0, 1))(b"AAPL", b"junk-too-big-for-the-producer", 0, 1),
            type(tick("AAPL", T0, 1.0, 2))(b"AAPL", b"junk-too-big-for-the-topic", 0, 2),
        ]
    )
    stubs = [p for p in effects.published if p[0] == "quotes.dlq" and p[2] is None]
    assert [p[3]["stockapp.source.offset"] for p in stubs] == [b"1", b"2"]
    assert all(p[1] is None and b"too large" in p[3]["stockapp.dropped"] for p in stubs)
    assert proc.stats["side_outputs_without_bytes"] == 2 and proc.stats["batch_retries"] == 0
    assert table.state(b"AAPL")["last_offset"] == 0


async def test_quotes_refitted_under_the_budget_count_as_they_apply_then():
    """A step taken back out no longer moves the watermark: a later quote it made late counts
    on time in the refit, and is neither stored nor sent as late twice over."""
    records = [bar("S", i, i) for i in range(40)]
    big = 123456.78901234567
    far = quote_record(
        "S",
        40,
        ts=T0 + 150_000,
        price=big * 1.0000001,
        open=big,
        high=big * 1.1,
        low=big * 0.9,
        volume=1234567.891234567,
        bar_seconds=1,
        id="A-bar",
    )
    early = tick("S", T0 + 10_000, 10.0, 41)
    sizes = {}
    for name, extra in (("with_early", [early]), ("with_far", [far])):
        proc, _, table, _ = make(T0 + 86_400_000)
        await proc.process(records + extra)
        sizes[name] = len(table[b"S"])
    budget = sizes["with_early"] + 2
    assert budget < sizes["with_far"]
    proc, effects, table, _ = make(T0 + 86_400_000, state_max_bytes=budget)
    await proc.process(records + [far, early])
    topics = [
        (p[0], p[3]["stockapp.source.offset"]) for p in effects.published if p[0] != "candles"
    ]
    assert topics == [("quotes.dlq", b"40")]  # the far bar refused, the early tick on time
    (minute,) = [c for c in proc.forming("S", "1m") if c[0].start == T0]
    assert minute[0].trades == 41 and proc.stats["late"] == 0
    assert sorted(q.offset for q in effects.quotes) == [*range(40), 41]


async def test_a_symbol_not_in_memory_shows_its_forming_candles():
    proc, _, _, _ = make(T0 + 3_600_000)
    await proc.process([tick("AAPL", T0 + 1000, 10.0, 0)])
    proc.forget()  # a rebalance, or the cache evicted it
    ((candle, _),) = proc.forming("AAPL", "1m")
    assert (candle.open, candle.trades) == (10.0, 1)


async def test_seeds_are_not_looked_up_for_symbols_the_limits_refuse():
    asked: list[list[str]] = []

    async def seeds(symbols: list[str]) -> dict:
        asked.append(sorted(symbols))
        return {}

    proc, _, _, _ = make(T0 + 3_600_000, symbols_allowed=("AAPL", "MSFT"), max_symbols=1)
    proc.port.seeds_fn = seeds
    await proc.process([tick("AAPL", T0, 1.0, 0), tick("JUNK", T0, 1.0, 1)])
    await proc.process([tick("MSFT", T0, 1.0, 2)])
    assert asked == [["AAPL"]]  # JUNK is not allowed; MSFT would pass the limit of one
