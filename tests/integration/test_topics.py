"""`stockapp worker` creates the pipeline's topics and refuses a quotes topic it can't use."""

import pytest

from stockapp.errors import StockappError
from stockapp.settings import load_settings
from stockapp.topics import ensure_topics


def test_creates_missing_topics_once(stack, unique):
    # Every topic named afresh: one left at its default (the signals topics were) exists or
    # not depending on which tests ran before on the stack, and on a new stack this one failed.
    names = {"quotes": "q", "candles": "c", "late": "l", "dlq": "d", "signals": "s"}
    names["signals_dlq"] = "sd"
    topics = {f"topic_{name}": f"t.{unique}.{short}" for name, short in names.items()}
    settings = load_settings().model_copy(update=topics)
    assert sorted(ensure_topics(settings)) == sorted(topics.values())
    assert ensure_topics(settings) == []


def test_partition_count_mismatch_is_refused(stack, unique):
    settings = load_settings().model_copy(
        update=dict(topic_quotes=f"t.{unique}.q4", quotes_partitions=4)
    )
    ensure_topics(settings)
    with pytest.raises(StockappError, match="has 4 partitions but STOCKAPP_QUOTES_PARTITIONS=8"):
        ensure_topics(settings.model_copy(update=dict(quotes_partitions=8)))

