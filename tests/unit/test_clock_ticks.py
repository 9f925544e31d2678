"""When the clock's closes run: as soon as a live candle is due (its end plus the grace
period), at least once a second, and soon again when a due close could not happen."""

from __future__ import annotations

import orjson
import pytest

from stockapp.partitioning import partition_for, symbol_partition
from stockapp.processing import (
    TIMER_MAX_WAIT_SECONDS,
    TIMER_RECHECK_SECONDS,
    TIMER_RETRY_SECONDS,
    QuoteProcessor,
    RawRecord,
)
from stockapp.settings import load_settings
from tests.fakes import Effects, Port, Table

NOW = 1_767_621_600.0 + 3_600 + 20  # 15:00:20 UTC, 2026-01-05


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tick(symbol: str, ts_ms: int, price: float, offset: int) -> RawRecord:
    key = symbol.encode()
    body = {"symbol": symbol, "ts": ts_ms, "price": price, "volume": 10}
    return RawRecord(key, orjson.dumps(body), partition_for(key, 8), offset)


def make(clock: Clock, port: Port | None = None) -> tuple[QuoteProcessor, Effects]:
    effects = Effects()
    settings = load_settings().model_copy(update={"intervals": ("1m",), "grace_seconds": 5.0})
    proc = QuoteProcessor(
        settings, Table(effects), effects, effects.publish, clock=clock, port=port
    )
    return proc, effects


async def test_a_live_candle_is_closed_as_soon_as_it_is_due():
    clock = Clock(NOW)
    proc, effects = make(clock)
    assert proc.tick_in(NOW) == 0  # nothing planned yet: due now
    await proc.on_timer()
    assert proc.next_tick_at == NOW + TIMER_MAX_WAIT_SECONDS  # nothing forming
    await proc.process([tick("AAPL", int(NOW * 1000) - 1000, 10.0, 0)])
    minute_end = 1_767_621_600.0 + 3_600 + 60  # 15:01:00
    assert proc.next_tick_at == NOW + TIMER_MAX_WAIT_SECONDS  # due later than that
    clock.now = minute_end - 0.5
    await proc.on_timer()
    assert proc.next_tick_at == minute_end + 0.5  # at least once a second
    clock.now = minute_end + 4.5
    await proc.on_timer()
    assert proc.next_tick_at == minute_end + 5.0  # the end plus the grace period, not later
    # The clock task sleeps just that long.
    assert proc.tick_in(minute_end + 4.9) == pytest.approx(0.1, abs=1e-6)
    assert proc.tick_in(minute_end + 5.0) == proc.tick_in(minute_end + 6.0) == 0
    clock.now = minute_end + 5.0
    await proc.on_timer()
    assert [c.start for c in effects.candles] == [int(minute_end * 1000) - 60_000]


async def test_a_batch_brings_the_next_tick_forward_and_a_blocked_close_retries_soon():
    clock = Clock(NOW)
    proc, _ = make(clock)
    proc.next_tick_at = NOW + 1000  # as if planned long ahead
    await proc.process([tick("AAPL", int(NOW * 1000) - 1000, 10.0, 0)])
    minute_end = 1_767_621_600.0 + 3_600 + 60
    assert proc.next_tick_at == minute_end + 5.0
    # Due, but a run of full batches holds the close back: tried again shortly.
    clock.now = minute_end + 5.0
    proc.drained, proc.last_batch = False, clock.now
    await proc.on_timer()
    assert proc.next_tick_at == clock.now + TIMER_RETRY_SECONDS


async def test_a_close_waiting_for_records_is_looked_at_often_and_asked_again_after_a_while():
    """Records had arrived when the tick asked: the clock task looks every
    TIMER_RECHECK_SECONDS whether they are applied (a comparison), and asks the broker again
    only after TIMER_MAX_WAIT_SECONDS (windows due since then close with it)."""
    calls = []

    async def backlog(processed: dict[int, int | None]) -> dict[int, int | None]:
        calls.append(processed)
        return dict.fromkeys(processed, 5)  # five more each time it is asked

    clock = Clock(NOW)
    proc, effects = make(clock, Port(backlog=backlog))
    await proc.process([tick("AAPL", int(NOW * 1000) - 1000, 10.0, 0)])
    minute_end = 1_767_621_600.0 + 3_600 + 60
    clock.now = minute_end + 5.0
    await proc.on_timer()
    assert len(calls) == 1 and effects.candles == []
    assert proc.tick_in(clock.now) == TIMER_RECHECK_SECONDS
    assert proc.tick_in(clock.now + TIMER_MAX_WAIT_SECONDS - 0.01) == pytest.approx(
        TIMER_RECHECK_SECONDS
    )
    assert proc.tick_in(clock.now + TIMER_MAX_WAIT_SECONDS) == 0
    clock.now += TIMER_MAX_WAIT_SECONDS
    await proc.on_timer()
    assert len(calls) == 2 and effects.candles == []


START = 1_767_621_600.0 + 3_600  # 15:00:00 UTC, 2026-01-05


async def test_a_question_held_for_one_partition_does_not_hold_back_a_close_due_later():
    """R (a stopped replay) is idle-due at 15:01:04.8 while 3 records wait in its partition:
    the tick asks and keeps the question. L (live, another partition, nothing waiting) is
    due at 15:01:05: its tick comes then, and asks again (the kept question's clock is
    before L's close was due)."""
    waiting = {}

    async def backlog(processed):
        return {p: waiting.get(p, 0) for p in processed}

    settings = load_settings().model_copy(
        update={"intervals": ("1m",), "grace_seconds": 5.0, "idle_close_seconds": 2.0}
    )
    assert settings.quotes_partitions == 8
    clock = Clock(START)
    effects = Effects()
    proc = QuoteProcessor(
        settings, Table(effects), effects, effects.publish, clock=clock, port=Port(backlog=backlog)
    )
    r, l_ = "RPLAY", "LIVE1"
    assert symbol_partition(r, 8) != symbol_partition(l_, 8)
    await proc.process([tick(r, int(START * 1000) - 86_400_000, 5.0, 0)])  # a day old: not live
    clock.now = START + 10
    await proc.process([tick(l_, int(START * 1000) + 5_000, 10.0, 0)])  # 15:00 forming
    waiting[symbol_partition(r, 8)] = 3
    clock.now = START + 64.8
    await proc.on_timer()  # R idle-due, its partition behind: the question is kept
    assert proc.question is not None and not effects.candles
    clock.now = START + 65.1  # L's minute is due (end + grace = 15:01:05)
    assert proc.tick_in(clock.now) == 0
    await proc.on_timer()
    assert [c.symbol for c in effects.candles] == [l_]


async def test_a_reached_question_is_used_even_if_its_answer_took_a_second():
    """The broker (or the lock) took 1 s to answer: the question is kept a second from its
    answer, not from its asking, so once its records are applied it closes (asked again, it
    would find those that arrived meanwhile, and under a steady stream never close)."""
    clock = Clock(START)
    ends = {}

    async def backlog(processed):
        clock.now += 1.0  # a slow answer (END_OFFSETS_TIMEOUT_S is 1 s), or a long lock wait
        return {p: ends[p] - (last + 1) for p, last in processed.items()}

    settings = load_settings().model_copy(update={"intervals": ("1m",), "grace_seconds": 5.0})
    effects = Effects()
    proc = QuoteProcessor(
        settings, Table(effects), effects, effects.publish, clock=clock, port=Port(backlog=backlog)
    )
    s = "LIVE1"
    p = symbol_partition(s, 8)
    await proc.process([tick(s, int(START * 1000) + 5_000, 10.0, 0)])
    ends[p] = 3  # offsets 1, 2 (of 15:00) wait when the tick asks
    clock.now = START + 65
    await proc.on_timer()
    assert not effects.candles
    await proc.process(
        [tick(s, int(START * 1000) + 50_000, 11.0, 1), tick(s, int(START * 1000) + 55_000, 12.0, 2)]
    )
    ends[p] = 6  # more keep arriving
    assert proc.tick_in(clock.now) == 0
    await proc.on_timer()
    assert [c.close for c in effects.candles] == [12.0]
