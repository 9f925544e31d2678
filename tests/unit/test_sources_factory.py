"""The source factory: one construction of each source for produce (live) and backfill
(history)."""

import asyncio
import itertools
from dataclasses import replace

from stockapp.settings import load_settings
from stockapp.sources.factory import SourceSpec, collect, open_source
from stockapp.sources.simulator import Simulator
from tests.helpers import REPO

START = 1_767_621_600_000


def test_simulated_history_ends_before_the_end_time():
    spec = SourceSpec(symbols=("A", "B"), seed=3, rate=1.0, speedup=2.0, start_ms=START)
    quotes = asyncio.run(collect(replace(spec, end_ms=START + 60_000), load_settings()))
    expected = list(itertools.islice(Simulator(["A", "B"], 3, 1.0, START, 2.0).ticks(), 30))
    assert quotes == expected  # one tick every 2 s of event time, none at or after the end


def test_csv_history_keeps_only_named_symbols():
    sample = REPO / "docs" / "samples" / "ticks.csv"
    everything = asyncio.run(collect(SourceSpec(kind="csv", file=sample), load_settings()))
    spec = SourceSpec(kind="csv", file=sample, symbols=("MSFT",), only_symbols=True)
    msft = asyncio.run(collect(spec, load_settings()))
    assert len(everything) == 120 and 0 < len(msft) < 120
    assert msft == [q for q in everything if q.symbol == "MSFT"]


async def test_live_simulator_is_paced_at_its_rate():
    spec = SourceSpec(symbols=("A",), rate=50.0, start_ms=START)
    async with open_source(spec, load_settings()) as source:
        first = list(itertools.islice(source.quotes, 3))
        assert [source.pacer(n, q) for n, q in enumerate(first)] == [0.0, 0.02, 0.04]
        assert source.report() == ""
