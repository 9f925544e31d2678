"""`stockapp worker` creates the pipeline's topics and refuses a quotes topic it can't use."""

import pytest

from stockapp.errors import StockappError
from stockapp.settings import load_settings
from stockapp.topics import ensure_topics


def test_creates_missing_topics_once(stack, unique):
    settings = load_settings().model_copy(
        update=dict(
            topic_quotes=f"t.{unique}.q",
            topic_candles=f"t.{unique}.c",
            topic_late=f"t.{unique}.l",
            topic_dlq=f"t.{unique}.d",
        )
    )
    assert sorted(ensure_topics(settings)) == sorted(
        [f"t.{unique}.q", f"t.{unique}.c", f"t.{unique}.l", f"t.{unique}.d"]
    )
    assert ensure_topics(settings) == []


def test_partition_count_mismatch_is_refused(stack, unique):
    settings = load_settings().model_copy(
        update=dict(topic_quotes=f"t.{unique}.q4", quotes_partitions=4)
    )
    ensure_topics(settings)
    with pytest.raises(StockappError, match="has 4 partitions but STOCKAPP_QUOTES_PARTITIONS=8"):
        ensure_topics(settings.model_copy(update=dict(quotes_partitions=8)))
