"""Each kind of bad record gets its own clear reason; good ones parse exactly."""

import pytest

from stockapp.validation import InvalidQuote, parse_quote, parse_ts, reason_class

NOW = 1_767_621_600_000  # 2026-01-05 14:00 UTC
SKEW = 300_000


def parse(value: bytes, key: bytes | None = b"AAPL"):
    return parse_quote(key, value, NOW, SKEW)


def test_tick_with_epoch_ms():
    q = parse(b'{"symbol": "AAPL", "ts": 1767621600123, "price": 189.12, "volume": 300}')
    assert (q.symbol, q.ts, q.price, q.volume, q.is_bar) == (
        "AAPL",
        1767621600123,
        189.12,
        300.0,
        False,
    )


def test_symbol_is_upper_cased_and_optional_fields_kept():
    q = parse(
        b'{"symbol": "aapl", "ts": 1767621600000, "price": 1, "volume": 0, "bid": 0.9,'
        b' "ask": 1.1, "source": "sim"}'
    )
    assert (q.symbol, q.bid, q.ask, q.source) == ("AAPL", 0.9, 1.1, "sim")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05T14:00:00.123+00:00", 1_767_621_600_123),
        ("2026-01-05T09:00:00-05:00", 1_767_621_600_000),
        ("2026-01-05T14:00:00Z", 1_767_621_600_000),
        ("2026-01-05T14:00:00.999999+00:00", 1_767_621_600_999),
    ],
)
def test_iso_timestamps(text, expected):
    assert parse_ts(text) == expected


def test_bar_record():
    q = parse(
        b'{"symbol": "AAPL", "ts": 1767621600000, "price": 11, "volume": 5, "open": 10,'
        b' "high": 12, "low": 9, "bar_seconds": 60}'
    )
    assert q.is_bar and (q.open, q.high, q.low, q.price, q.bar_seconds) == (10, 12, 9, 11, 60)


REJECTIONS = [
    (b"AAPL", None, "empty record"),
    (b"AAPL", b"{not json", "not valid JSON"),
    (b"AAPL", b"\xff\xfe", "not valid JSON"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "price": NaN, "volume": 1}', "not valid JSON"),
    (b"AAPL", b'"AAPL"', "must be a JSON object"),
    (b"AAPL", b'{"ts": 1, "price": 1, "volume": 1}', "missing field 'symbol'"),
    (b"AAPL", b'{"symbol": 5, "ts": 1, "price": 1, "volume": 1}', "symbol must be a string"),
    (
        b"TOO-LONG-SYMBOL-X",
        b'{"symbol": "TOO-LONG-SYMBOL-X", "ts": 1, "price": 1, "volume": 1}',
        "bad symbol",
    ),
    (b"A/B", b'{"symbol": "A/B", "ts": 1, "price": 1, "volume": 1}', "bad symbol"),
    (b"MSFT", b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1}', "record key 'MSFT'"),
    (None, b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1}', "record key None"),
    (b"AAPL", b'{"symbol": "AAPL", "price": 1, "volume": 1}', "missing field 'ts'"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1.5, "price": 1, "volume": 1}', "ts must be epoch"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": true, "price": 1, "volume": 1}', "ts must be epoch"),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": -1, "price": 1, "volume": 1}',
        "must not be before 1970",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": "yesterday", "price": 1, "volume": 1}',
        "not ISO-8601",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": "2026-01-05T14:00:00", "price": 1, "volume": 1}',
        "no UTC offset",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1767622000000, "price": 1, "volume": 1}',
        "in the future",
    ),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "volume": 1}', "missing field 'price'"),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": "1", "volume": 1}',
        "price must be a number",
    ),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "price": 0, "volume": 1}', "price must be > 0"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "price": -3, "volume": 1}', "price must be > 0"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "price": 1e999, "volume": 1}', "infinity"),
    (b"AAPL", b'{"symbol": "AAPL", "ts": 1, "price": 1}', "missing field 'volume'"),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": -1}',
        "volume must be within 0..1e+15",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "bid": 0}',
        "bid must be > 0",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "source": 7}',
        "source must be a string",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "open": 1}',
        "bar record is missing high, low, bar_seconds",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "open": 1, "high": 2,'
        b' "low": 1, "bar_seconds": 0}',
        "bar_seconds must be a positive integer",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 5, "volume": 1, "open": 1, "high": 2,'
        b' "low": 1, "bar_seconds": 60}',
        "low <= open, close <= high",
    ),
    # Bounds that keep every derived value finite and every window computable.
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": "0001-01-01T00:00:00+00:00", "price": 1, "volume": 1}',
        "before 1970",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": "9999-12-31T23:59:59+00:00", "price": 1, "volume": 1}',
        "before the year 3000",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": "9999-12-31T23:59:59-14:00", "price": 1, "volume": 1}',
        "before the year 3000",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1e200, "volume": 1e200}',
        "price must be at most",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1e200}',
        "volume must be within",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "ask": 1e300}',
        "ask must be at most",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1, "price": 1, "volume": 1, "open": 1, "high": 1,'
        b' "low": 1, "bar_seconds": 1000000000}',
        "bar_seconds must be at most 86400",
    ),
    (
        b"AAPL",
        b'{"symbol": "AAPL", "ts": 1767621600000, "price": 1, "volume": 1, "open": 1,'
        b' "high": 1, "low": 1, "bar_seconds": 3600}',
        "bar ends 3600s in the future",
    ),
]


@pytest.mark.parametrize(("key", "value", "reason"), REJECTIONS)
def test_rejections_name_the_problem(key, value, reason):
    with pytest.raises(InvalidQuote, match=None) as info:
        parse_quote(key, value, NOW, SKEW)
    assert reason in str(info.value)


def test_history_without_a_skew_check_is_still_bounded():
    from stockapp.validation import quote_from_mapping

    with pytest.raises(InvalidQuote, match="year 3000"):
        quote_from_mapping({"symbol": "X", "ts": 99_999_999_999_999, "price": 1, "volume": 1})
    q = quote_from_mapping({"symbol": "X", "ts": 32_503_679_999_999, "price": 1, "volume": 1})
    assert q.bar().ts == 32_503_679_999_999


@pytest.mark.parametrize(("key", "value", "reason"), REJECTIONS)
def test_every_rejection_has_a_reason_class(key, value, reason):
    """The dead-letter metric's label: each reason this module gives falls in a named class
    (a new message that matches none would be counted as ``other``)."""
    with pytest.raises(InvalidQuote) as info:
        parse_quote(key, value, NOW, SKEW)
    assert reason_class(str(info.value)) != "other"
    assert reason_class(f"element 3: {info.value}") == reason_class(str(info.value))


def test_reason_classes():
    assert reason_class("not valid JSON: unexpected character") == "not_json"
    assert reason_class("record packs 10001 quotes (at most 10000)") == "too_many_quotes"
    assert reason_class("could not be applied: OverflowError: x") == "unprocessable"
    assert reason_class("price must be > 0, got -1") == "out_of_range"
    assert reason_class("ts must be epoch milliseconds (integer) or ISO-8601") == "wrong_type"
    assert reason_class("something new") == "other"


@pytest.mark.parametrize(("key", "value", "reason"), REJECTIONS)
def test_every_rejection_carries_its_kind(key, value, reason):
    """The kind a refusal is raised with is the metric's label; it agrees with the class its
    message falls in, so dead letters are counted as before kinds were given at the source."""
    with pytest.raises(InvalidQuote) as info:
        parse_quote(key, value, NOW, SKEW)
    assert info.value.kind == reason_class(str(info.value))
    assert info.value.kind != "other"


def test_a_bad_element_carries_its_kind():
    from stockapp.validation import parse_record

    items = parse_record(b"AAPL", b'[7, {"symbol": "AAPL"}]', NOW, SKEW)
    assert [item.kind for item in items] == ["not_json", "missing_field"]
