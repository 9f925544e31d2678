"""The live feeds' parsers against the services' documented examples (docs/sources.md)."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from stockapp.sources.alpaca import AlpacaDialogue, epoch_ms, parse_bar, parse_trade
from stockapp.sources.alpaca_history import retry_after, rfc3339
from stockapp.sources.conditions import Counts, alpaca_counts, finnhub_counts
from stockapp.sources.finnhub import FinnhubDialogue
from stockapp.sources.live_feed import Dropped, FeedRefused, FeedStats, RecentIds


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_alpaca_documented_trade():
    item = {
        "T": "t",
        "i": 96921,
        "S": "AAPL",
        "x": "D",
        "p": 126.55,
        "s": 1,
        "t": "2021-02-22T15:51:44.208Z",
        "c": ["@", "I"],
        "z": "C",
    }
    parsed = parse_trade(item)
    assert parsed is not None
    quote, counts, unknown = parsed
    assert (quote.symbol, quote.price, quote.volume) == ("AAPL", 126.55, 1.0)
    assert quote.ts == ms("2021-02-22T15:51:44.208+00:00")
    assert quote.id.startswith("apca:D:96921:") and quote.source == "alpaca"
    # Trade ids count per symbol and exchange, and start again each day: the id holds both.
    assert parse_trade({**item, "S": "MSFT"})[0].id != quote.id
    assert parse_trade({**item, "t": "2021-02-23T15:51:44.208Z"})[0].id != quote.id
    assert parse_trade(dict(item))[0].id == quote.id  # the same trade again
    # An odd lot ("I") counts in volume only, whatever else it carries.
    assert counts is Counts.VOLUME and quote.volume_only and not unknown


def test_volume_only_is_a_boolean_of_a_trade():
    from stockapp.validation import InvalidQuote, quote_from_mapping

    tick = {"symbol": "AAPL", "ts": 1_700_000_000_000, "price": 1.0, "volume": 2}
    assert quote_from_mapping({**tick, "volume_only": True}).volume_only
    assert not quote_from_mapping({**tick, "volume_only": None}).volume_only
    with pytest.raises(InvalidQuote, match="must be a boolean"):
        quote_from_mapping({**tick, "volume_only": 1})
    bar = {**tick, "open": 1.0, "high": 1.0, "low": 1.0, "bar_seconds": 60}
    with pytest.raises(InvalidQuote, match="is for trades"):
        quote_from_mapping({**bar, "volume_only": True})


def test_alpaca_nanoseconds_are_truncated_to_the_millisecond():
    assert epoch_ms("2023-04-06T11:54:26.838232225Z") == ms("2023-04-06T11:54:26.838+00:00")
    assert epoch_ms("2023-04-06T11:54:26Z") == ms("2023-04-06T11:54:26+00:00")
    assert epoch_ms("2023-04-06T07:54:26.5-04:00") == ms("2023-04-06T11:54:26.500+00:00")
    for bad in ("2023-04-06", "yesterday", 1680782066838, None, "2023-13-06T11:54:26Z"):
        assert epoch_ms(bad) is None


def test_alpaca_documented_bar_is_a_minute_bar_at_its_start():
    item = {
        "T": "b",
        "S": "SPY",
        "o": 388.985,
        "h": 389.13,
        "l": 388.975,
        "c": 389.12,
        "v": 49378,
        "n": 461,
        "vw": 389.062639,
        "t": "2021-02-22T19:15:00Z",
    }
    bar = parse_bar(item)
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.price, bar.volume) == (
        388.985,
        389.13,
        388.975,
        389.12,
        49378.0,
    )
    assert bar.ts == ms("2021-02-22T19:15:00+00:00") and bar.bar_seconds == 60
    assert parse_bar({**item, "l": 390.0}) is None  # low above the close


@pytest.mark.parametrize(
    ("conditions", "tape", "counts"),
    [
        ([" "], "A", Counts.ALL),  # CTA's regular sale is a space
        (["@"], "C", Counts.ALL),
        (["@", "F", "T"], "C", Counts.ALL),  # sweep, extended hours: minute bars take them
        (["B"], "A", Counts.VOLUME),  # CTA: average price
        (["B"], "C", Counts.ALL),  # UTP: bunched
        (["@", "W"], "C", Counts.VOLUME),
        (["@", "Z"], "C", Counts.VOLUME),
        (["@", "4", "I"], "C", Counts.VOLUME),
        (["M"], "A", Counts.NONE),  # official close: volume counted already
        (["Q", "I"], "C", Counts.NONE),  # the strictest wins
        ([], "C", Counts.ALL),
    ],
)
def test_alpaca_conditions(conditions, tape, counts):
    assert alpaca_counts(conditions, tape) == (counts, False)


def test_unknown_codes_count_as_regular_and_are_reported():
    assert alpaca_counts(["@", "?"], "C") == (Counts.ALL, True)
    assert finnhub_counts(["1", "99"]) == (Counts.ALL, True)
    assert finnhub_counts(["1", "99", "12"]) == (Counts.VOLUME, True)


@pytest.mark.parametrize(
    ("codes", "counts"),
    [
        (["1"], Counts.ALL),
        (["1", "24"], Counts.ALL),  # Form T: extended hours, in minute bars
        (["1", "24", "12"], Counts.VOLUME),  # an odd lot
        (["3"], Counts.VOLUME),  # average price
        (["30"], Counts.VOLUME),  # out of sequence
        (["16"], Counts.NONE),  # official close
        (["20", "1"], Counts.NONE),  # official open
    ],
)
def test_finnhub_conditions(codes, counts):
    assert finnhub_counts(codes) == (counts, False)


def finnhub(stats: FeedStats | None = None) -> FinnhubDialogue:
    return FinnhubDialogue("ws://x", "key", ["AAPL", "MSFT"], stats or FeedStats(), 60.0)


def test_finnhub_documented_trade_frame():
    stats = FeedStats()
    dialogue = finnhub(stats)
    frame = {
        "data": [{"c": ["1", "24", "12"], "p": 146.76, "s": "AAPL", "t": 1628238530221, "v": 43}],
        "type": "trade",
    }
    (quote,) = dialogue.frame(orjson.dumps(frame).decode())
    assert (quote.symbol, quote.ts, quote.price, quote.volume) == (
        "AAPL",
        1628238530221,
        146.76,
        43.0,
    )
    assert quote.volume_only and quote.source == "finnhub"
    assert stats.trades == 1
    assert dialogue.frame('{"type":"ping"}') == []


def test_finnhub_ids_tell_identical_trades_apart_and_a_repeat_after_a_reconnect():
    trade = {"c": ["1"], "p": 10.0, "s": "AAPL", "t": 1_700_000_000_000, "v": 5}
    frame = orjson.dumps({"type": "trade", "data": [trade, trade]}).decode()
    dialogue = finnhub()
    first, second = dialogue.frame(frame)
    assert first.id != second.id
    dialogue._same.clear()  # what open() does on a new connection
    again, _ = dialogue.frame(frame)
    assert again.id == first.id


def test_finnhub_bad_frames_are_counted_and_skipped():
    stats = FeedStats()
    dialogue = finnhub(stats)
    assert dialogue.frame("not json") == []
    assert dialogue.frame('{"type":"trade","data":"x"}') == []
    bad = [{"s": "AAPL", "p": -1, "t": 1, "v": 1}, {"s": "AAPL", "p": 1, "t": "x", "v": 1}]
    good = {"s": "AAPL", "p": 1.5, "t": 1_700_000_000_000, "v": 2}
    quotes = dialogue.frame(orjson.dumps({"type": "trade", "data": [*bad, good]}).decode())
    assert [q.price for q in quotes] == [1.5]
    assert stats.malformed == 4


def test_finnhub_too_many_symbols_stops_the_source_and_says_why():
    stats = FeedStats()
    with pytest.raises(FeedRefused, match="too many symbols.*2 symbols.*allows 50"):
        finnhub(stats).frame('{"type":"error","msg":"Subscribing to too many symbols"}')
    assert finnhub().frame('{"type":"error","msg":"something else"}') == []


def test_no_key_is_refused_before_connecting():
    with pytest.raises(FeedRefused, match="FINNHUB_API_KEY"):
        FinnhubDialogue("ws://x", "", ["AAPL"], FeedStats(), 60.0)
    with pytest.raises(FeedRefused, match="APCA_API_KEY_ID"):
        AlpacaDialogue("ws://x", "id", "", "iex", ["AAPL"], FeedStats())


def alpaca(stats: FeedStats | None = None) -> AlpacaDialogue:
    return AlpacaDialogue("ws://x/v2", "id", "secret", "iex", ["AAPL"], stats or FeedStats())


@pytest.mark.parametrize(
    ("code", "msg", "outcome"),
    [
        (402, "auth failed", FeedRefused),
        (405, "symbol limit exceeded", FeedRefused),
        (409, "insufficient subscription", FeedRefused),
        (410, "invalid subscribe action for this feed", FeedRefused),
        (406, "connection limit exceeded", Dropped),
        (407, "slow client", Dropped),
        (500, "internal error", Dropped),
    ],
)
def test_alpaca_errors_stop_or_reconnect(code, msg, outcome):
    frame = orjson.dumps([{"T": "error", "code": code, "msg": msg}]).decode()
    with pytest.raises(outcome, match=str(code)):
        alpaca().frame(frame)


def test_alpaca_already_authenticated_is_harmless_and_corrections_are_counted():
    stats = FeedStats()
    dialogue = alpaca(stats)
    assert dialogue.frame('[{"T":"error","code":403,"msg":"already authenticated"}]') == []
    assert dialogue.frame('[{"T":"c","S":"AAPL"},{"T":"x","S":"AAPL"}]') == []
    assert stats.not_applied == 2


def test_the_keys_never_show_in_a_repr():
    assert "secret" not in repr(alpaca()) and "key" not in repr(finnhub())


def test_recent_ids_are_bounded():
    ids = RecentIds(size=3)
    assert [ids.seen(x) for x in "abca"] == [False, False, False, True]
    assert not ids.seen("d")  # "a" is now forgotten
    assert not ids.seen("a")


def test_history_helpers():
    assert rfc3339(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert retry_after({"Retry-After": "3"}, 0, 0.0) == 3.0
    assert retry_after({"X-RateLimit-Reset": "105"}, 0, 100.0) == 5.0
    assert retry_after({}, 3, 0.0) == 8.0
