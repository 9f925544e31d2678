import logging

from stockapp.logs import RepeatFilter


def record(msg: str, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_a_repeated_line_is_held_back_and_counted():
    now = [0.0]
    f = RepeatFilter(window_s=10, clock=lambda: now[0])
    assert f.filter(record("Unable to update metadata from %s"))
    for _ in range(500):
        now[0] += 0.01
        assert not f.filter(record("Unable to update metadata from %s"))
    assert f.filter(record("another line"))  # other messages are not affected
    now[0] = 10.5
    again = record("Unable to update metadata from %s")
    assert f.filter(again)
    assert again.msg.endswith("(repeated 500 more times in 10 s)")
    now[0] = 30.0
    third = record("Unable to update metadata from %s")
    assert f.filter(third) and "repeated" not in third.msg


def test_cassandra_driver_warnings_get_through_rate_limited():
    """Silenced while connecting (one clear error is raised instead), not for good."""
    import cassandra.cluster  # noqa: F401 - creates the driver's module loggers, as connect does

    from stockapp.sinks import cassandra_session

    pool = logging.getLogger("cassandra.pool")
    with cassandra_session._quiet_driver():
        assert not pool.isEnabledFor(logging.ERROR)
    assert pool.isEnabledFor(logging.WARNING)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    pool.addHandler(handler)
    try:
        for _ in range(50):
            pool.warning("Error attempting to reconnect to %s", "127.0.0.1:9042")
    finally:
        pool.removeHandler(handler)
    assert len(records) == 1
