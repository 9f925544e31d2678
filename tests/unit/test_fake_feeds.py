"""The fake Finnhub and Alpaca servers keep to the documented protocols, driven by aiohttp."""

import asyncio
import json

import aiohttp
import pytest

from tests.fake_alpaca import (
    AUTHENTICATED,
    CONNECTED,
    FakeAlpaca,
    bar,
    error,
)
from tests.fake_alpaca import (
    trade as alpaca_trade,
)
from tests.fake_feeds_script import AwaitSubscribed, Drop, Send, Silence
from tests.fake_finnhub import (
    PING,
    TOO_MANY_SYMBOLS,
    FakeFinnhub,
    trade,
    trades_message,
)

TOKEN = "test-token"
AUTH = {"action": "auth", "key": "test-key", "secret": "test-secret"}
REST_HEADERS = {"APCA-API-KEY-ID": "test-key", "APCA-API-SECRET-KEY": "test-secret"}


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 1.0):
    msg = await ws.receive(timeout=timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


def is_dropped(msg: aiohttp.WSMessage) -> bool:
    # A cut connection ends the stream without the server's close frame (code 1000 et al.).
    return msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR) or (
        msg.type is aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.ABNORMAL_CLOSURE
    )


# -- Finnhub ---------------------------------------------------------------------------------


async def test_finnhub_subscribe_then_scripted_trades_then_pings():
    message = trades_message(trade("AAPL", 146.76, 1_628_238_530_221, 43, ["1", "24", "12"]))
    script = [AwaitSubscribed(2), Send(message)]
    async with (
        FakeFinnhub(scripts=[script], ping_every=0.05) as fake,
        aiohttp.ClientSession() as http,
        # The trailing "/" form is accepted as well as the documented "?token=" one.
        http.ws_connect(f"{fake.url}/?token={TOKEN}") as ws,
    ):
        await ws.send_json({"type": "subscribe", "symbol": "AAPL"})
        await ws.send_json({"type": "subscribe", "symbol": "MSFT"})
        assert await receive_json(ws) == {
            "type": "trade",
            "data": [
                {"p": 146.76, "s": "AAPL", "t": 1_628_238_530_221, "v": 43, "c": ["1", "24", "12"]}
            ],
        }
        assert await receive_json(ws) == PING  # the script is over: keep-alives follow
        conn = fake.connections[0]
        assert conn.token == TOKEN
        assert conn.subscribed == ["AAPL", "MSFT"]
        assert conn.received[0] == {"type": "subscribe", "symbol": "AAPL"}
    assert fake.script_errors == []


async def test_finnhub_bad_token_is_refused_with_401_before_the_upgrade():
    async with FakeFinnhub() as fake, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{fake.url}?token=wrong")
        assert refused.value.status == 401
        assert fake.rejected == ["wrong"]
        assert fake.connections == []


async def test_finnhub_symbol_limit_and_unsubscribe_frees_a_slot():
    async with (
        FakeFinnhub(max_symbols=2, ping_every=0) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.url}?token={TOKEN}") as ws,
    ):
        for symbol in ("A", "B", "C"):
            await ws.send_json({"type": "subscribe", "symbol": symbol})
        assert await receive_json(ws) == TOO_MANY_SYMBOLS
        await ws.send_json({"type": "unsubscribe", "symbol": "A"})
        await ws.send_json({"type": "subscribe", "symbol": "C"})
        conn = fake.connections[0]
        for _ in range(100):
            if conn.subscribed == ["B", "C"]:
                break
            await asyncio.sleep(0.01)
        assert conn.subscribed == ["B", "C"]


async def test_finnhub_drop_cuts_the_connection_and_the_next_one_idles():
    message = trades_message(trade("AAPL", 1.0, 1, 1))
    async with FakeFinnhub(scripts=[[AwaitSubscribed(1), Send(message), Drop()]]) as fake:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{fake.url}?token={TOKEN}") as ws:
                await ws.send_json({"type": "subscribe", "symbol": "AAPL"})
                assert await receive_json(ws) == message  # sent before the drop, so delivered
                assert is_dropped(await ws.receive(timeout=1))
            assert fake.connections[0].dropped
            async with http.ws_connect(f"{fake.url}?token={TOKEN}") as ws:
                conn = await fake.wait_connections(2)
                assert not conn.dropped


async def test_finnhub_silence_sends_nothing_then_resumes():
    async with (
        FakeFinnhub(scripts=[[Silence(1.5)]], ping_every=0.05) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.url}?token={TOKEN}") as ws,
    ):
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.5)
        assert await receive_json(ws, timeout=5) == PING
        assert fake.connections[0].sent[0] == json.dumps(PING, separators=(",", ":"))


# -- Alpaca stream ---------------------------------------------------------------------------


async def test_alpaca_handshake_subscribe_and_scripted_trade():
    frame = [alpaca_trade("AAPL", 126.55, 1, "2026-12-04T15:51:44.208123456Z", 96921)]
    async with (
        FakeAlpaca(scripts=[[AwaitSubscribed(1), Send(frame)]]) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.stream_url}/iex") as ws,
    ):
        assert await receive_json(ws) == CONNECTED
        await ws.send_json(AUTH)
        assert await receive_json(ws) == AUTHENTICATED
        await ws.send_json({"action": "subscribe", "trades": ["AAPL"], "bars": ["AAPL", "MSFT"]})
        assert await receive_json(ws) == [
            {
                "T": "subscription",
                "trades": ["AAPL"],
                "quotes": [],
                "bars": ["AAPL", "MSFT"],
                "updatedBars": [],
                "dailyBars": [],
                "statuses": [],
                "lulds": [],
                "corrections": ["AAPL"],
                "cancelErrors": ["AAPL"],
            }
        ]
        assert await receive_json(ws) == frame
        conn = fake.connections[0]
        assert (conn.feed, conn.authenticated, conn.trades, conn.bars) == (
            "iex",
            True,
            ["AAPL"],
            ["AAPL", "MSFT"],
        )


async def test_alpaca_wrong_secret_gets_402_and_a_close():
    async with (
        FakeAlpaca() as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.stream_url}/iex") as ws,
    ):
        await receive_json(ws)
        await ws.send_json({**AUTH, "secret": "nope"})
        assert await receive_json(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        assert (await ws.receive(timeout=1)).type is aiohttp.WSMsgType.CLOSE
        assert fake.connections[0].errors == [402]
        assert not fake.connections[0].authenticated


async def test_alpaca_protocol_errors_before_and_after_auth():
    async with (
        FakeAlpaca(max_symbols=2, auth_timeout=5) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.stream_url}/iex") as ws,
    ):
        await receive_json(ws)
        await ws.send_json({"action": "subscribe", "trades": ["AAPL"]})
        assert await receive_json(ws) == error(401)
        await ws.send_str("{not json")
        assert await receive_json(ws) == error(400)
        await ws.send_json(AUTH)
        assert await receive_json(ws) == AUTHENTICATED
        await ws.send_json(AUTH)
        assert await receive_json(ws) == error(403)
        await ws.send_json({"action": "subscribe", "trades": ["A", "B"]})
        assert (await receive_json(ws))[0]["trades"] == ["A", "B"]
        await ws.send_json({"action": "subscribe", "bars": ["C"]})
        assert await receive_json(ws) == [
            {"T": "error", "code": 405, "msg": "symbol limit exceeded"}
        ]
        assert fake.connections[0].bars == []  # unchanged by the refused request
        await ws.send_json({"action": "subscribe", "bars": ["B"]})  # no new symbol
        assert (await receive_json(ws))[0]["bars"] == ["B"]


async def test_alpaca_sip_without_subscription_gets_409():
    async with (
        FakeAlpaca(feeds={"iex"}) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.stream_url}/sip") as ws,
    ):
        await receive_json(ws)
        await ws.send_json(AUTH)
        assert await receive_json(ws) == [
            {"T": "error", "code": 409, "msg": "insufficient subscription"}
        ]
        assert (await ws.receive(timeout=1)).type is aiohttp.WSMsgType.CLOSE


async def test_alpaca_second_connection_gets_406_and_silent_one_404():
    async with FakeAlpaca(auth_timeout=0.1) as fake, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{fake.stream_url}/iex") as first:
            await receive_json(first)
            await first.send_json(AUTH)
            assert await receive_json(first) == AUTHENTICATED
            async with http.ws_connect(f"{fake.stream_url}/iex") as second:
                await receive_json(second)
                await second.send_json(AUTH)
                assert await receive_json(second) == error(406)
                assert (await second.receive(timeout=1)).type is aiohttp.WSMsgType.CLOSE
        async with http.ws_connect(f"{fake.stream_url}/iex") as late:
            await receive_json(late)
            assert await receive_json(late) == error(404)  # never sent auth
            assert (await late.receive(timeout=1)).type is aiohttp.WSMsgType.CLOSE
        assert [c.errors for c in fake.connections] == [[], [406], [404]]


async def test_alpaca_drop_is_a_cut_connection():
    async with (
        FakeAlpaca(scripts=[[Drop()]]) as fake,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.stream_url}/iex") as ws,
    ):
        await receive_json(ws)
        await ws.send_json(AUTH)
        assert await receive_json(ws) == AUTHENTICATED
        assert is_dropped(await ws.receive(timeout=1))
        assert fake.connections[0].dropped


# -- Alpaca REST -----------------------------------------------------------------------------


def minute(i: int) -> str:
    return f"2026-01-05T14:{30 + i:02d}:00Z"


async def test_alpaca_bars_pages_return_every_bar_once():
    history = {
        "AAPL": [bar("AAPL", minute(i), 1, 2, 0.5, 1.5, 100 + i) for i in range(5)],
        "MSFT": [bar("MSFT", minute(i), 3, 4, 2.5, 3.5, 200 + i) for i in range(4)],
        "IBM": [bar("IBM", minute(0), 5, 6, 4.5, 5.5, 300)],  # not asked for
    }
    async with FakeAlpaca(bars=history, page_size=3) as fake, aiohttp.ClientSession() as http:
        query = {
            "symbols": "MSFT,AAPL",
            "timeframe": "1Min",
            "start": minute(0),
            "end": minute(3),  # inclusive
            "limit": "1000",
            "feed": "iex",
            "sort": "asc",
        }
        seen: list[tuple[str, str]] = []
        pages = 0
        while True:
            async with http.get(
                f"{fake.data_url}/v2/stocks/bars", params=query, headers=REST_HEADERS
            ) as response:
                assert response.status == 200
                body = await response.json()
            pages += 1
            assert sum(len(bars) for bars in body["bars"].values()) <= 3
            for symbol, bars in body["bars"].items():
                seen += [(symbol, b["t"]) for b in bars]
                assert all(set(b) == {"t", "o", "h", "l", "c", "v", "n", "vw"} for b in bars)
            if body["next_page_token"] is None:
                break
            query["page_token"] = body["next_page_token"]
        expected = [(s, minute(i)) for s in ("AAPL", "MSFT") for i in range(4)]
        assert seen == expected
        assert pages == 3
        assert all("APCA-API-SECRET-KEY" not in r["headers"] for r in fake.rest_requests)


async def test_alpaca_rest_errors_and_429_retry_after():
    async with FakeAlpaca(rate_limit_every=2) as fake, aiohttp.ClientSession() as http:
        url = f"{fake.data_url}/v2/stocks/bars"
        query = {"symbols": "AAPL", "timeframe": "1Min", "start": minute(0), "end": minute(1)}
        async with http.get(
            url, params=query, headers={**REST_HEADERS, "APCA-API-SECRET-KEY": "x"}
        ) as r:
            assert (r.status, await r.json()) == (403, {"message": "forbidden."})
        async with http.get(url, params={**query, "timeframe": "5Min"}, headers=REST_HEADERS) as r:
            assert (r.status, await r.json()) == (422, {"message": "invalid timeframe"})
        async with http.get(url, params=query, headers=REST_HEADERS) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "1"
            assert await r.json() == {"message": "too many requests."}
        async with http.get(url, params=query, headers=REST_HEADERS) as r:
            assert (r.status, await r.json()) == (200, {"bars": {}, "next_page_token": None})
        assert [r["status"] for r in fake.rest_requests] == [403, 422, 429, 200]
