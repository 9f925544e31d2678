"""The state budget checked at start: against what Kafka takes, and against the largest
state the settings allow (tables/state_size.py)."""

import orjson
import pytest

from stockapp.errors import StockappError
from stockapp.faust_compat import RECORD_FRAMING_BYTES
from stockapp.settings import load_settings
from stockapp.state_budget import check_state_budget, producer_batch_bytes, state_bytes_at_most
from stockapp.tables.state_size import worst_case_state
from stockapp.tables.symbol_state import CandleSpec, SymbolState


def test_the_defaults_fit_the_default_budget_and_kafkas_limit():
    settings = load_settings()
    check_state_budget(settings, 1_000_000)
    assert state_bytes_at_most(settings) < settings.state_max_bytes


def test_a_budget_over_what_the_changelog_takes_is_refused_in_one_line():
    settings = load_settings().model_copy(update={"state_max_bytes": 2_000_000})
    with pytest.raises(StockappError) as info:
        check_state_budget(settings, 1_000_000)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("STOCKAPP_STATE_MAX_BYTES=2000000 does not fit in a record")
    assert "max.message.bytes" in message


def test_the_producer_batches_states_up_to_what_the_changelog_takes():
    """Kafka refuses a record batch over the topic's max.message.bytes, and a batch holds
    several states: the configured size is lowered to fit, never raised."""
    settings = load_settings()
    assert producer_batch_bytes(settings, 1_000_000) == 512 * 1024
    small = 300 * 1024  # a changelog topic made to take less than the broker's default
    assert producer_batch_bytes(settings, small) == small - RECORD_FRAMING_BYTES
    tiny = settings.model_copy(update={"kafka_producer_batch_bytes": 16 * 1024})
    assert producer_batch_bytes(tiny, 1_000_000) == 16 * 1024


def test_a_topic_described_with_an_error_has_no_limit_read():
    """DescribeConfigs answers per resource; one it refused (here TOPIC_AUTHORIZATION_FAILED)
    carries no value, so the worker keeps the small batches (stockapp/state_budget.py)."""
    from types import SimpleNamespace

    from stockapp.state_budget import _config_values

    entry = ("max.message.bytes", "300000", False, 1, False)
    response = SimpleNamespace(
        resources=[(0, None, 2, "read", [entry]), (29, "denied", 2, "denied", [entry])]
    )
    assert _config_values([response], "max.message.bytes") == {(2, "read"): 300_000}


def test_settings_whose_largest_state_is_over_the_budget_are_refused():
    heavy = ("sma:1000", "sma:999", "sma:998", "bb:1000:2", "bb:999:2", "rsi:14", "vwap")
    settings = load_settings().model_copy(update={"indicators": heavy})
    needed = state_bytes_at_most(settings)
    assert needed > settings.state_max_bytes
    with pytest.raises(StockappError, match=rf"below the largest state .*\({needed} bytes"):
        check_state_budget(settings, None)
    check_state_budget(settings.model_copy(update={"state_max_bytes": needed}), None)


def test_the_worst_case_round_trips_and_bounds_what_a_feed_builds():
    spec = CandleSpec.build(("1m", "1d"), "America/New_York", 5.0)
    worst = worst_case_state(spec, rules=3, lookback=30, longest=20)
    data = orjson.dumps(worst.to_dict())
    again = SymbolState.from_dict(orjson.loads(data), spec)
    assert orjson.dumps(again.to_dict()) == data
