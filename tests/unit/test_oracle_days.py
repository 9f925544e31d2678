"""The oracle's local day of a timestamp, memoised per UTC day, is pandas' answer for every
instant: across DST changes and in zones whose offsets are not whole hours."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import _local_day, day_window

ZONES = [
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/St_Johns",  # -03:30 and DST
    "Pacific/Chatham",  # +12:45 and DST
    # Clocks changed at midnight: some midnights do not exist or come twice, where pandas
    # raises; the days beside them must still be answered.
    "America/Santiago",
    "America/Asuncion",
    "America/Sao_Paulo",
    "America/Havana",
    "UTC",
]


def _answer(at: int, tz: str) -> tuple[int, int] | str:
    try:
        return _local_day(at, tz)
    except ValueError:
        return "raises"


def _memoised(at: int, tz: str) -> tuple[int, int] | str:
    try:
        return day_window(at, tz)
    except ValueError:
        return "raises"


@settings(max_examples=400, deadline=None)
@given(
    ts=st.integers(min_value=1_500_000_000_000, max_value=1_900_000_000_000),
    tz=st.sampled_from(ZONES),
    snap=st.sampled_from([1, 60_000, 900_000, 3_600_000]),
    edge=st.sampled_from([0, -1]),
)
def test_day_window_is_pandas_local_day(ts: int, tz: str, snap: int, edge: int) -> None:
    at = ts - ts % snap + edge  # on and just before quarter hours and hours, where days turn
    assert _memoised(at, tz) == _answer(at, tz)


@pytest.mark.parametrize(
    ("tz", "utc"),
    [
        ("America/Sao_Paulo", "2018-11-03T01:00Z"),  # the evening before a missing midnight
        ("America/Santiago", "2020-09-05T02:00Z"),
        ("America/Asuncion", "2020-10-03T02:00Z"),
        ("America/Havana", "2013-11-02T01:00Z"),  # before a midnight that comes twice
        ("Pacific/Apia", "2011-12-30T12:00Z"),  # the day after the skipped 30 December
    ],
)
def test_a_day_beside_a_midnight_pandas_cannot_place_is_still_answered(tz: str, utc: str):
    at = int(pd.Timestamp(utc).value // 1_000_000)
    for instant in range(at - 6 * 3_600_000, at + 6 * 3_600_000, 900_000):
        assert _memoised(instant, tz) == _answer(instant, tz)
    assert _answer(at, tz) != "raises"


def test_every_quarter_hour_around_both_dst_changes_of_2026() -> None:
    tz = "America/New_York"
    for first_day in (1_772_928_000_000, 1_793_404_800_000):  # 2026-03-07, 2026-10-31 UTC
        for at in range(first_day, first_day + 3 * 86_400_000, 900_000):
            for instant in (at - 1, at):
                assert day_window(instant, tz) == _local_day(instant, tz)
