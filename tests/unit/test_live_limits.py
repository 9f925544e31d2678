"""Live connections: places taken before the handshake, per worker and per client address,
and given back; what the live signals feed lets through to the pages."""

from __future__ import annotations

import pytest

from stockapp.settings import load_settings
from stockapp.web import live
from stockapp.web.signal_schema import checked_signal


@pytest.fixture
def hub(monkeypatch):
    settings = load_settings().model_copy(
        update={"live_max_connections": 5, "live_max_per_client": 2}
    )
    monkeypatch.setattr(live, "get_settings", lambda: settings)
    return live.Hub(lambda: None)


def test_places_per_client_and_per_worker(hub):
    assert hub.reserve("10.0.0.1") is None
    assert hub.reserve("10.0.0.1") is None
    assert hub.reserve("10.0.0.1") == (429, "too many live connections from this address")
    assert hub.reserve("10.0.0.2") is None
    assert hub.reserve(None) is None  # a relay a worker signed: counted in all only
    assert hub.reserve(None) is None
    assert hub.reserve("10.0.0.3") == (503, "too many live connections on this worker")
    assert (hub.clients, dict(hub.per_client)) == (5, {"10.0.0.1": 2, "10.0.0.2": 1})
    assert dict(hub.refused) == {"client": 1, "worker": 1}
    hub.release("10.0.0.1")
    hub.release(None)
    assert hub.reserve("10.0.0.1") is None
    for client in ("10.0.0.1", "10.0.0.1", "10.0.0.2", None):
        hub.release(client)
    assert (hub.clients, dict(hub.per_client)) == (0, {})


SIGNAL = {
    "key": "AAPL|1m|golden_cross|1767621600000",
    "symbol": "AAPL",
    "interval": "1m",
    "rule": "golden_cross",
    "kind": "crosses_above",
    "start": 1767621600000,
    "end": 1767621660000,
    "values": {"sma_20": 231.5, "sma_50": None, "level": 70},
    "provisional": False,
}


def test_a_signal_of_the_right_shape_is_pushed_as_it_is():
    assert checked_signal(SIGNAL) == SIGNAL
    assert checked_signal({**SIGNAL, "extra": "<script>"}) == SIGNAL  # known fields only


@pytest.mark.parametrize(
    "change",
    [
        {"values": {"sma_20": "not a number"}},
        {"values": {"sma_20": True}},
        {"values": {"sma_20": float("inf")}},
        {"values": []},
        {"values": {str(i): 1.0 for i in range(100)}},
        {"start": "1767621600000"},
        {"start": True},
        {"end": -1},
        {"symbol": "AAPL\n"},
        {"symbol": "<b>"},
        {"interval": "1 minute"},
        {"rule": "Bad Rule"},
        {"kind": "explodes"},
        {"provisional": "no"},
        {"key": ""},
        {"key": None},
    ],
)
def test_a_malformed_signal_is_dropped(change):
    assert checked_signal({**SIGNAL, **change}) is None


@pytest.mark.parametrize("data", [None, [], "signal", 1, {}])
def test_what_is_not_an_object_is_dropped(data):
    assert checked_signal(data) is None


def test_the_signals_feed_drops_and_counts_what_is_not_a_signal():
    import orjson

    from stockapp.web.signals import SignalTail

    tail = SignalTail()
    subscriber = live.Subscriber()
    tail.subscribers.add(subscriber)
    tail._offer(b"not json")
    tail._offer(None)
    tail._offer(orjson.dumps({**SIGNAL, "values": {"sma_20": "x"}}))
    tail._offer(orjson.dumps(SIGNAL))
    assert (tail.malformed, tail.received) == (3, 1)
    assert subscriber.queue.qsize() == 1
    assert subscriber.queue.get_nowait()[0]["signal"] == SIGNAL
