"""When the agent joins takes into one batch: only behind the stream, within its bounds."""

from stockapp.batching import keep_collecting, waiting_after


def test_waiting_counts_what_follows_the_last_held_offset_of_each_partition():
    ends = {0: 100, 1: 51, 2: None}
    held = [(0, 10), (0, 40), (1, 50), (2, 7), (0, 39)]
    # partition 0: 41..99 wait; 1: nothing after 50; 2: its end is not known yet
    assert waiting_after(held, ends.get) == 59
    assert waiting_after([], ends.get) == 0


def test_a_backlog_is_collected_a_live_stream_is_not():
    # Behind: 20,000 wait, 300 held -> take more.
    assert keep_collecting(300, 20_000, 0.05, batch_max=5000, collect_max=1.0)
    # Live: a handful in flight behind 40 held -> process now.
    assert not keep_collecting(40, 12, 0.05, batch_max=5000, collect_max=1.0)
    # Bounds: the batch is full, or has been collected long enough, or joining is off.
    assert not keep_collecting(5000, 20_000, 0.05, batch_max=5000, collect_max=1.0)
    assert not keep_collecting(300, 20_000, 1.0, batch_max=5000, collect_max=1.0)
    assert not keep_collecting(300, 20_000, 0.0, batch_max=5000, collect_max=0.0)
