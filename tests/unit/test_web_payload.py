import asyncio
import datetime as dt
import math
from types import SimpleNamespace

from stockapp.tables.candle import Candle
from stockapp.tables.indicators import NAMES
from stockapp.web.live import Hub
from stockapp.web.payload import candles_body, encode_candle, from_candle, from_row


def candle(**kw) -> Candle:
    base = dict(
        symbol="AAPL",
        interval="1m",
        start=1_767_621_600_000,
        end=1_767_621_660_000,
        open=10.0,
        high=12.0,
        low=9.5,
        close=11.0,
        volume=300.0,
        trades=3,
        open_ts=1_767_621_600_100,
        close_ts=1_767_621_659_000,
        pv=3300.0,
    )
    base.update(kw)
    return Candle(**base)


def test_candle_json_shape_and_nulls():
    body = from_candle(candle(), {"sma_20": 10.5, "rsi_14": math.nan})
    assert body == {
        "t": 1_767_621_600,
        "session": "regular",
        "o": 10.0,
        "h": 12.0,
        "l": 9.5,
        "c": 11.0,
        "v": 300.0,
        "closed": False,
        "indicators": {"sma_20": 10.5, "rsi_14": None},
    }


def test_a_body_of_encoded_candles_is_the_bytes_of_encoding_it_whole():
    """/api/candles joins cached encoded candles: its body must be what faust's View.json
    (orjson, with its options) made of the whole object, byte for byte."""
    from faust.utils import json as faust_json

    candles = [
        from_candle(candle(start=1_767_621_600_000 + i * 60_000, close=11.0 + i / 3), values)
        for i, values in enumerate(
            [{"sma_20": 10.5, "rsi_14": math.nan}, {"sma_20": None, "rsi_14": 1e-7}, {}]
        )
    ]
    whole = {"symbol": "BRK.B", "interval": "1m", "candles": candles}
    body = candles_body("BRK.B", "1m", [encode_candle(c) for c in candles])
    assert body == faust_json.dumps(whole)
    empty = {"symbol": 'A\u00e9"', "interval": "1d", "candles": []}
    assert candles_body('A\u00e9"', "1d", []) == faust_json.dumps(empty)


def test_row_json_uses_utc():
    row = SimpleNamespace(
        start=dt.datetime(2026, 1, 5, 14, 0),  # the driver's naive UTC
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10.0,
        closed=True,
        **{name: None for name in NAMES},
        sma_7=2.5,
    )
    body = from_row(row, ("sma_7", "rsi_14"), "1m")
    assert body["t"] == 1_767_621_600 and body["indicators"] == {"sma_7": 2.5, "rsi_14": None}


def test_hub_delivers_closed_then_forming_to_matching_subscribers():
    forming = candle(start=1_767_621_660_000, end=1_767_621_720_000, close=11.2)
    proc = SimpleNamespace(forming=lambda symbol, interval: [(forming, {"sma_20": 1.0})])

    async def run() -> None:
        hub = Hub(lambda: proc)
        one = hub.subscribe("AAPL", "1m")
        other = hub.subscribe("MSFT", "1m")
        hub.on_change({"AAPL"}, [candle(closed=True)])
        first, second = one.queue.get_nowait()  # one change: its messages together
        assert one.queue.empty()
        assert (first["candle"]["t"], first["candle"]["closed"]) == (1_767_621_600, True)
        assert (second["candle"]["t"], second["candle"]["c"]) == (1_767_621_660, 11.2)
        assert other.queue.empty()
        hub.unsubscribe("AAPL", "1m", one)
        assert ("AAPL", "1m") not in hub.subscribers

    asyncio.run(run())


def test_many_slow_clients_stay_bounded_and_are_marked_for_dropping():
    """A thousand subscribers that never read: each holds at most QUEUE_SIZE changes and is
    flagged (its connection is then cut); one that reads keeps up."""
    from stockapp.web.live import QUEUE_SIZE

    forming = candle(start=1_767_621_660_000, end=1_767_621_720_000, close=11.2)
    proc = SimpleNamespace(forming=lambda symbol, interval: [(forming, {"sma_20": 1.0})])

    async def run() -> None:
        hub = Hub(lambda: proc)
        slow = [hub.subscribe("AAPL", "1m") for _ in range(1000)]
        fast = hub.subscribe("AAPL", "1m")
        for _ in range(QUEUE_SIZE + 50):
            hub.on_change({"AAPL"}, [])
            while not fast.queue.empty():
                fast.queue.get_nowait()
        assert all(s.queue.qsize() == QUEUE_SIZE and s.overflowed for s in slow)
        assert not fast.overflowed and fast.queue.empty()
        for s in slow:
            hub.unsubscribe("AAPL", "1m", s)
        assert hub.subscribers[("AAPL", "1m")] == {fast}

    asyncio.run(run())


def test_a_change_closing_many_candles_is_one_entry_for_a_client():
    """A catching-up worker closes hundreds of a symbol's candles in one batch: a client that
    reads is not dropped for that, however many messages the change holds."""
    from stockapp.web.live import QUEUE_SIZE

    step = 60_000
    closed = [
        candle(start=1_767_621_600_000 + i * step, end=1_767_621_660_000 + i * step, closed=True)
        for i in range(QUEUE_SIZE * 4)
    ]
    proc = SimpleNamespace(forming=lambda symbol, interval: [])

    async def run() -> None:
        hub = Hub(lambda: proc)
        client = hub.subscribe("AAPL", "1m")
        hub.on_change({"AAPL"}, closed)
        hub.on_change({"MSFT"}, closed)  # not the client's symbol: nothing offered
        assert not client.overflowed and client.queue.qsize() == 1
        messages = client.queue.get_nowait()
        assert [m["candle"]["t"] for m in messages] == [c.start // 1000 for c in closed]

    asyncio.run(run())


async def test_an_encoded_answer_goes_out_as_view_json_sends_the_same_object():
    """/api/candles answers RawJson (joined cached bytes): status, headers and body must be
    what the view's JSON answer of the same object was."""
    import orjson
    from aiohttp.test_utils import make_mocked_request

    from stockapp.app import app
    from stockapp.web.http import ApiView, RawJson

    view = ApiView(app, app.web)
    request = make_mocked_request("GET", "/api/candles/AAPL")
    body = {"symbol": "AAPL", "interval": "1m", "candles": [from_candle(candle(), {})]}

    async def as_object():
        return body

    async def as_bytes():
        return RawJson(orjson.dumps(body))

    wanted = await view.respond(request, as_object)
    got = await view.respond(request, as_bytes)
    assert (got.status, got.body, dict(got.headers)) == (
        wanted.status,
        wanted.body,
        dict(wanted.headers),
    )
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
