"""CSV replay: ticks or bars, with or without a header; bad rows reported by line number."""

from pathlib import Path

import pytest

from stockapp.models import Quote
from stockapp.sources.csv_replay import CsvRowError, read_quotes
from stockapp.sources.factory import keeping_gaps

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "q.csv"
    path.write_text(text)
    return path


def test_sample_files_are_clean():
    problems: list[str] = []
    ticks = list(read_quotes(SAMPLES / "ticks.csv", report=problems.append))
    bars = list(read_quotes(SAMPLES / "bars-1min.csv", report=problems.append))
    assert problems == [] and len(ticks) == 120 and len(bars) == 30
    assert bars[0].bar_seconds == 60 and bars[0].ts == 1_767_623_400_000


def test_header_in_any_order_and_iso_times(tmp_path):
    path = write(tmp_path, "volume,price,TS,Symbol\n10,1.5,2026-01-05T14:00:00Z,aapl\n")
    assert list(read_quotes(path)) == [
        Quote(symbol="AAPL", ts=1_767_621_600_000, price=1.5, volume=10.0, source="csv")
    ]


def test_no_header_ticks_and_bars(tmp_path):
    ticks = list(read_quotes(write(tmp_path, "MSFT,1767621600000,410.5,3\n")))
    assert ticks[0].price == 410.5 and ticks[0].volume == 3
    bars = list(read_quotes(write(tmp_path, "IBM,1767621600000,10,12,9,11,500\n"), bar_seconds=300))
    assert (
        bars[0].open,
        bars[0].high,
        bars[0].low,
        bars[0].price,
        bars[0].bar_seconds,
    ) == (10, 12, 9, 11, 300)


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = write(
        tmp_path,
        "symbol,ts,price,volume\n"
        "AAPL,1767621600000,1.5,10\n"
        "AAPL,1767621600001,abc,10\n"
        "AAPL,1767621600002,-1,10\n"
        "BAD SYMBOL,1767621600003,1,1\n"
        "AAPL,1767621600004\n"
        "\n"
        "AAPL,yesterday,1,1\n"
        "AAPL,1767621600005,2.5,20\n",
    )
    problems: list[str] = []
    quotes = list(read_quotes(path, report=problems.append))
    assert [q.price for q in quotes] == [1.5, 2.5]
    assert [p.split(": skipped: ")[0].rsplit(":", 1)[1] for p in problems] == [
        "3",
        "4",
        "5",
        "6",
        "8",
    ]
    assert "not a number" in problems[0] and "price must be > 0" in problems[1]
    assert "bad symbol" in problems[2] and "2 columns, expected 4" in problems[3]
    assert "not ISO-8601" in problems[4]


def test_strict_stops_at_the_first_bad_row(tmp_path):
    path = write(tmp_path, "AAPL,1767621600000,1.5,10\nAAPL,1767621600001,0,10\n")
    reader = read_quotes(path, strict=True)
    assert next(reader).price == 1.5
    with pytest.raises(CsvRowError, match=r"q.csv:2: price must be > 0"):
        next(reader)


def test_unknown_layout_is_refused(tmp_path):
    with pytest.raises(CsvRowError, match="line 1: 3 columns and no header"):
        list(read_quotes(write(tmp_path, "a,b,c\n")))


def test_replay_keeps_gaps_at_a_speed():
    due = keeping_gaps(10.0)
    assert [
        due(n, Quote(symbol="X", ts=ms, price=1.0, volume=1.0))
        for n, ms in enumerate([1000, 1000, 3000, 21_000])
    ] == [
        0.0,
        0.0,
        0.2,
        2.0,
    ]
