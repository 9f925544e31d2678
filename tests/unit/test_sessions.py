"""Trading sessions: every boundary of the session split, the windows cut from sessions, and
candles and indicators of a week of sessions equal to pandas and ``ta`` over the calendar
library's own schedule (tests/oracle.py)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from stockapp.settings import Settings
from stockapp.tables.candle import Bar, Candle
from stockapp.tables.intervals import parse_interval
from stockapp.tables.sessions import ALWAYS_OPEN, Session, calendar
from stockapp.tables.symbol_state import CandleSpec, SymbolState
from tests.oracle import Tick, assert_close_or_null, expected_session_candles, session_segments
from tests.streams import week_of_ticks

NY = ZoneInfo("America/New_York")
REGULAR = calendar("XNYS", "regular", "America/New_York")
EXTENDED = calendar("XNYS", "extended", "America/New_York")


def at(day: str, clock: str, ms: int = 0) -> int:
    """Epoch ms of a New York wall-clock time."""
    moment = dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=NY)
    return int(moment.timestamp() * 1000) + ms


# 2026-12-03 is a Thursday (standard time); 2026-11-27 the half-day after Thanksgiving;
# 2026-11-26 Thanksgiving; 2026-12-05 a Saturday; 2026-03-09 the Monday after the change to
# daylight time.
@pytest.mark.parametrize(
    ("moment", "session"),
    [
        (at("2026-12-03", "03:59:59.999"), Session.CLOSED),
        (at("2026-12-03", "04:00:00"), Session.PRE),
        (at("2026-12-03", "09:29:59.999"), Session.PRE),
        (at("2026-12-03", "09:30:00"), Session.REGULAR),
        (at("2026-12-03", "15:59:59.999"), Session.REGULAR),
        (at("2026-12-03", "16:00:00"), Session.POST),  # a tick at 16:00 is after-hours
        (at("2026-12-03", "19:59:59.999"), Session.POST),
        (at("2026-12-03", "20:00:00"), Session.CLOSED),
        (at("2026-11-27", "12:59:59.999"), Session.REGULAR),
        (at("2026-11-27", "13:00:00"), Session.POST),  # the early close
        (at("2026-11-27", "16:59:59.999"), Session.POST),
        (at("2026-11-27", "17:00:00"), Session.CLOSED),
        (at("2026-11-26", "11:00:00"), Session.CLOSED),  # a holiday
        (at("2026-12-05", "11:00:00"), Session.CLOSED),  # a weekend
        (at("2026-03-09", "09:29:59.999"), Session.PRE),
        (at("2026-03-09", "09:30:00"), Session.REGULAR),  # 13:30 UTC in daylight time
    ],
)
def test_every_boundary_of_the_session_split(moment: int, session: Session) -> None:
    assert REGULAR.session(moment) is session
    assert EXTENDED.session(moment) is session
    counted = REGULAR.segment(moment)
    assert (counted is not None) == (session is Session.REGULAR)
    extended = EXTENDED.segment(moment)
    assert (extended is not None) == (session is not Session.CLOSED)


def test_the_daylight_saving_change_moves_the_open_in_utc() -> None:
    before = REGULAR.segment(at("2026-03-06", "10:00:00"))
    after = REGULAR.segment(at("2026-03-09", "10:00:00"))
    assert before is not None and after is not None
    assert dt.datetime.fromtimestamp(before.open / 1000, dt.UTC).hour == 14
    assert dt.datetime.fromtimestamp(after.open / 1000, dt.UTC).hour == 13


def test_trading_days_know_holidays_and_early_closes() -> None:
    days = {d.date: d for d in REGULAR.days(dt.date(2026, 11, 25), dt.date(2026, 11, 30))}
    assert sorted(days) == [dt.date(2026, 11, 25), dt.date(2026, 11, 27), dt.date(2026, 11, 30)]
    half = days[dt.date(2026, 11, 27)]
    assert half.regular == ((at("2026-11-27", "09:30"), at("2026-11-27", "13:00")),)
    assert half.post == (at("2026-11-27", "13:00"), at("2026-11-27", "17:00"))
    assert half.pre == (at("2026-11-27", "04:00"), at("2026-11-27", "09:30"))


def test_a_lookup_years_away_reads_the_calendar_there() -> None:
    assert REGULAR.session(at("2031-07-03", "10:00")) is Session.REGULAR
    assert REGULAR.session(at("2031-07-04", "10:00")) is Session.CLOSED  # Independence Day
    assert REGULAR.session(at("2026-12-03", "10:00")) is Session.REGULAR


def windows(name: str, cal, anchor: str, moments: list[int]) -> list[tuple[int, int] | None]:
    interval = parse_interval(name, "America/New_York", cal, anchor)
    return [interval.window(m) for m in moments]


def test_hourly_bars_start_at_the_open_and_the_last_is_cut_at_the_close() -> None:
    day = "2026-12-03"
    got = windows(
        "1h", REGULAR, "auto", [at(day, "09:30"), at(day, "10:29:59.999"), at(day, "15:45")]
    )
    assert got == [
        (at(day, "09:30"), at(day, "10:30")),
        (at(day, "09:30"), at(day, "10:30")),
        (at(day, "15:30"), at(day, "16:00")),
    ]
    half = "2026-11-27"
    assert windows("1h", REGULAR, "auto", [at(half, "12:45")]) == [
        (at(half, "12:30"), at(half, "13:00"))
    ]
    # Anchored to the epoch instead: cut at the open and the close.
    assert windows("1h", REGULAR, "epoch", [at(day, "09:40"), at(day, "10:10")]) == [
        (at(day, "09:30"), at(day, "10:00")),
        (at(day, "10:00"), at(day, "11:00")),
    ]
    # Outside the counted sessions: no window.
    assert windows("1h", REGULAR, "auto", [at(day, "08:00"), at(day, "16:00")]) == [None, None]


def test_extended_hours_cut_bars_at_each_session() -> None:
    day = "2026-12-03"
    moments = [
        at(day, "04:10"),
        at(day, "09:15"),
        at(day, "09:31"),
        at(day, "16:00"),
        at(day, "19:59"),
    ]
    assert windows("1h", EXTENDED, "auto", moments) == [
        (at(day, "04:00"), at(day, "05:00")),
        (at(day, "09:00"), at(day, "09:30")),
        (at(day, "09:30"), at(day, "10:30")),
        (at(day, "16:00"), at(day, "17:00")),
        (at(day, "19:00"), at(day, "20:00")),
    ]
    assert windows("1d", EXTENDED, "auto", [at(day, "05:00")]) == [
        (at(day, "04:00"), at(day, "20:00"))
    ]


def test_daily_candles_are_the_regular_session_and_close_early_on_half_days() -> None:
    assert windows("1d", REGULAR, "auto", [at("2026-12-03", "12:00")]) == [
        (at("2026-12-03", "09:30"), at("2026-12-03", "16:00"))
    ]
    assert windows("1d", REGULAR, "auto", [at("2026-11-27", "12:00")]) == [
        (at("2026-11-27", "09:30"), at("2026-11-27", "13:00"))
    ]
    assert windows("1d", REGULAR, "auto", [at("2026-11-26", "12:00")]) == [None]


def test_always_open_keeps_the_epoch_and_midnight() -> None:
    always = calendar(ALWAYS_OPEN, "regular", "America/New_York")
    assert always.session(at("2026-12-05", "03:00")) is Session.REGULAR
    moment = at("2026-12-05", "03:17")
    assert windows("1h", always, "session", [moment]) == [
        (at("2026-12-05", "03:00"), at("2026-12-05", "04:00"))
    ]
    assert windows("1d", always, "auto", [moment]) == [
        (at("2026-12-05", "00:00"), at("2026-12-06", "00:00"))
    ]


def test_settings_choose_the_calendar() -> None:
    assert Settings().exchange == ALWAYS_OPEN
    chosen = Settings(exchange="XNYS", session_hours="extended")
    assert chosen.calendar is EXTENDED
    with pytest.raises(ValueError, match="knows no pre-market"):
        Settings(exchange="XLON", session_hours="extended")
    with pytest.raises(ValueError, match="is not a calendar"):
        Settings(exchange="NOWHERE")


# -- candles of a week of sessions against the oracle ------------------------------------------

INTERVALS = ("1m", "5m", "15m", "1h", "1d")
SEED = 7
GRACE_MS = 5000


def run_states(
    ticks: list[Tick], spec: CandleSpec, roundtrip_every: int = 0
) -> tuple[list[Candle], int]:
    states: dict[str, SymbolState] = {}
    closed: list[Candle] = []
    outside = 0
    for offset, tick in enumerate(ticks):
        state = states.get(tick.symbol) or SymbolState(tick.symbol, spec)
        applied = state.apply(
            Bar.tick(tick.ts, tick.price, tick.volume, not tick.volume_only), offset, closed
        )
        assert not applied.late
        outside += applied.outside
        if roundtrip_every and offset % roundtrip_every == 0:
            state = SymbolState.from_dict(json.loads(json.dumps(state.to_dict())), spec)
        states[tick.symbol] = state
    for state in states.values():
        state.close_all(closed)
    return closed, outside


@pytest.mark.parametrize(
    ("first", "hours", "anchor"),
    [
        ("2026-11-23", "regular", "auto"),  # Thanksgiving week: a holiday, a half-day, a weekend
        ("2026-11-23", "extended", "auto"),
        ("2026-03-05", "regular", "epoch"),  # the change to daylight time
        ("2026-03-05", "extended", "session"),
    ],
)
def test_a_week_of_sessions_matches_pandas_and_ta(first: str, hours: str, anchor: str) -> None:
    cal = calendar("XNYS", hours, "America/New_York")
    spec = CandleSpec.build(
        INTERVALS, "America/New_York", GRACE_MS / 1000, calendar=cal, anchor=anchor
    )
    ticks = week_of_ticks(first, 8, ["AAA", "BBB"], seed=SEED)
    closed, outside = run_states(ticks, spec, roundtrip_every=101)
    last = (dt.date.fromisoformat(first) + dt.timedelta(days=7)).isoformat()
    segments = session_segments("XNYS", hours, first, last)
    spans = pd.IntervalIndex.from_arrays(segments["open"], segments["close"], closed="left")
    counted = (spans.get_indexer([t.ts for t in ticks]) >= 0).sum()
    assert outside == len(ticks) - counted > 0
    for name in INTERVALS:
        oracle_anchor = (
            "session" if anchor == "session" or (anchor == "auto" and name == "1h") else "epoch"
        )
        want = expected_session_candles(ticks, name, segments, oracle_anchor)
        for symbol in ("AAA", "BBB"):
            ours = sorted(
                (c for c in closed if c.interval == name and c.symbol == symbol),
                key=lambda c: c.start,
            )
            theirs = want[want["symbol"] == symbol].sort_values("start")
            assert [(c.start, c.end) for c in ours] == list(
                zip(theirs["start"], theirs["end"], strict=True)
            ), (name, symbol)
            for candle, (_, row) in zip(ours, theirs.iterrows(), strict=True):
                where = f"{name} {symbol} {candle.start}"
                got = (
                    candle.open,
                    candle.high,
                    candle.low,
                    candle.close,
                    candle.volume,
                    candle.trades,
                )
                expected = tuple(
                    row[k] for k in ("open", "high", "low", "close", "volume", "trades")
                )
                assert got == expected, where
                for output, value in candle.indicators.items():
                    assert_close_or_null(value, row[output], (where, output))
    days = {c.start for c in closed if c.interval == "1d"}
    assert len(days) == len(segments["day_open"].unique())  # no candle for a holiday or weekend


@pytest.mark.parametrize("hours", ["regular", "extended"])
def test_the_backfill_cuts_the_same_candles_from_sessions(hours: str) -> None:
    """`stockapp backfill` computes history with pandas (stockapp/history.py): with a
    calendar, its closed candles are the oracle's too."""
    from stockapp.backfill import compute
    from stockapp.models import Quote

    settings = Settings(exchange="XNYS", session_hours=hours)
    ticks = [t for t in week_of_ticks("2026-11-23", 8, ["AAA"], seed=5) if not t.volume_only]
    ticks.sort(key=lambda t: t.ts)
    quotes = [Quote(t.symbol, t.ts, t.price, t.volume) for t in ticks]
    result = compute(settings, quotes)
    segments = session_segments("XNYS", hours, "2026-11-23", "2026-11-30")
    for name in settings.intervals:
        anchor = "session" if name == "1h" else "epoch"
        want = expected_session_candles(ticks, name, segments, anchor).sort_values("start")
        ours = sorted((c for c in result.closed if c.interval == name), key=lambda c: c.start)
        assert ours, name
        # The backfill leaves the candle still forming at its end to the stream.
        assert len(want) - 1 <= len(ours) <= len(want), name
        want = want.iloc[: len(ours)]
        for candle, (_, row) in zip(ours, want.iterrows(), strict=True):
            where = f"{name} {candle.start}"
            assert candle.end == row["end"], where
            got = (candle.open, candle.high, candle.low, candle.close, candle.volume, candle.trades)
            expected = tuple(row[k] for k in ("open", "high", "low", "close", "volume", "trades"))
            assert got == expected, where
            for output, value in candle.indicators.items():
                assert_close_or_null(value, row[output], (where, output))


def test_the_api_names_the_calendar_and_the_coming_sessions() -> None:
    from stockapp.web.describe import meta

    settings = Settings(exchange="XNYS")
    saturday = meta(settings, at("2026-11-28", "11:00"))
    assert saturday["exchange"] == "XNYS" and saturday["timezone"] == "America/New_York"
    assert saturday["session_now"] == "closed" and not saturday["always_open"]
    monday, tuesday = saturday["sessions"]
    assert (monday["date"], tuesday["date"]) == ("2026-11-30", "2026-12-01")
    assert monday["regular"] == [
        [at("2026-11-30", "09:30") // 1000, at("2026-11-30", "16:00") // 1000]
    ]
    assert monday["pre"] == [at("2026-11-30", "04:00") // 1000, at("2026-11-30", "09:30") // 1000]
    half = meta(settings, at("2026-11-27", "13:30"))
    assert half["session_now"] == "post"
    assert half["sessions"][0]["regular"][0][1] == at("2026-11-27", "13:00") // 1000
    always = meta(Settings())
    assert always["always_open"] and always["session_now"] == "regular"


def test_candles_in_the_api_say_their_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from stockapp.web import payload

    monkeypatch.setattr(payload, "get_settings", lambda: Settings(exchange="XNYS"))
    assert payload.session_of("1m", at("2026-12-03", "09:29")) == "pre"
    assert payload.session_of("1h", at("2026-12-03", "09:30")) == "regular"
    assert payload.session_of("5m", at("2026-12-03", "16:00")) == "post"
    assert payload.session_of("1d", at("2026-12-03", "09:30")) == "regular"


def test_the_demo_runs_on_the_calendar_if_its_sessions_are_open_and_keeps_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import os

    from stockapp.devstack import demo
    from stockapp.devstack.settings import DevstackSettings

    # Recorded as it was, and put back so afterwards: demo_settings exports the fallback.
    monkeypatch.setenv("STOCKAPP_EXCHANGE", "XNYS")
    monkeypatch.delenv("STOCKAPP_EXCHANGE")
    first, second = tmp_path / "a", tmp_path / "b"  # two demos' .run directories
    nyse = DevstackSettings(exchange="XNYS", run_dir=first)
    assert demo.demo_settings(nyse, at("2026-12-03", "10:00")).exchange == "XNYS"
    assert "STOCKAPP_EXCHANGE" not in os.environ
    # Restarted on a Saturday, it keeps the calendar its data was cut with.
    assert demo.demo_settings(nyse, at("2026-12-05", "10:00")).exchange == "XNYS"
    assert (first / "demo-calendar").read_text() == "XNYS XNYS\n"

    night = DevstackSettings(exchange="XNYS", run_dir=second)
    weekend = demo.demo_settings(night, at("2026-12-05", "10:00"))
    assert weekend.exchange == ALWAYS_OPEN and weekend.calendar.continuous
    assert os.environ["STOCKAPP_EXCHANGE"] == ALWAYS_OPEN  # for its children
    monkeypatch.delenv("STOCKAPP_EXCHANGE")
    # Restarted in the session: still always open, as its data is.
    assert demo.demo_settings(night, at("2026-12-03", "10:00")).exchange == ALWAYS_OPEN
    # Another exchange named: that one (with a warning).
    london = DevstackSettings(exchange="XLON", run_dir=second)
    assert demo.demo_settings(london, at("2026-12-03", "10:00")).exchange == "XLON"
    assert (second / "demo-calendar").read_text() == "XLON XLON\n"
    # The history: 6.5 h of counted session time, back over the closed time: Monday's first
    # half hour, the half-day Friday's 3.5 h, Wednesday's last 2.5 h.
    assert demo.history_start(nyse, at("2026-11-30", "10:00")) == at("2026-11-25", "13:30")
    assert demo.history_start(nyse, at("2026-12-03", "16:30")) == at("2026-12-03", "09:30")
    always = Settings()
    assert demo.history_start(always, 10**12) == 10**12 - 390 * 60_000


def test_a_simulated_backfill_is_the_last_trading_day_by_default() -> None:
    """`stockapp backfill` without --from: the simulator skips closed time, so a day back
    from a Saturday would be nothing; it starts at the last trading day's counted open."""
    from stockapp.cli import _last_trading_day

    nyse = Settings(exchange="XNYS")
    assert _last_trading_day(nyse, at("2026-12-05", "10:00")) == at("2026-12-04", "09:30")
    assert _last_trading_day(nyse, at("2026-12-03", "09:00")) == at("2026-12-02", "09:30")
    assert _last_trading_day(nyse, at("2026-12-03", "12:00")) == at("2026-12-03", "09:30")
    extended = Settings(exchange="XNYS", session_hours="extended")
    assert _last_trading_day(extended, at("2026-12-03", "09:00")) == at("2026-12-03", "04:00")
    always = Settings(exchange=ALWAYS_OPEN)
    assert _last_trading_day(always, 10**12) == 10**12 - 86_400_000
