"""The live feeds against local fakes of Finnhub and Alpaca (tests/fake_finnhub.py,
tests/fake_alpaca.py): scripted sessions with refused keys, dropped and silent connections,
malformed frames, repeats, excluded conditions and the services' errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest

from stockapp.models import Quote
from stockapp.sources.alpaca import AlpacaDialogue
from stockapp.sources.finnhub import FinnhubDialogue
from stockapp.sources.live_feed import Dialogue, FeedRefused, FeedStats, LiveFeed
from tests import fake_alpaca
from tests.fake_feeds_script import AwaitSubscribed, Drop, Send, Silence, Sleep
from tests.fake_finnhub import TOO_MANY_SYMBOLS, FakeFinnhub, trade, trades_message

T0 = 1_764_858_600_000  # 2025-12-04 14:30 UTC


class Waits:
    """The backoff's waits, taken at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def feed(dialogue: Dialogue, stats: FeedStats, waits: Waits, heartbeat: float = 20.0) -> LiveFeed:
    return LiveFeed(dialogue, stats, heartbeat, 60.0, sleep=waits, jitter=lambda: 0.5)


async def take(quotes: AsyncIterator[Quote], count: int, timeout: float = 10.0) -> list[Quote]:
    out: list[Quote] = []

    async def run() -> None:
        async for quote in quotes:
            out.append(quote)
            if len(out) == count:
                return

    await asyncio.wait_for(run(), timeout)
    await quotes.aclose()  # type: ignore[attr-defined]
    return out


def closed_port() -> int:
    """A loopback port nothing listens on (it was bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def finnhub(server: FakeFinnhub, stats: FeedStats, symbols=("AAPL", "MSFT"), token="test-token"):
    return FinnhubDialogue(server.url, token, list(symbols), stats, idle_seconds=0.5)


async def test_finnhub_reconnects_after_a_drop_and_a_silence_and_drops_repeats():
    a = trade("AAPL", 100.0, T0, 10, ["1"])
    b = trade("MSFT", 400.0, T0 + 5, 3, ["1", "12"])  # an odd lot: volume only
    c = trade("AAPL", 101.0, T0 + 9, 7, ["16"])  # official close: counts for nothing
    d = trade("AAPL", 99.0, T0 + 2, 4, ["1"])  # out of order: passed on, placed by its time
    e = trade("AAPL", 102.0, T0 + 20, 1, ["1"])
    scripts = [
        [AwaitSubscribed(2), Send(trades_message(a, b)), Send("{not json"), Drop()],
        [AwaitSubscribed(2), Send(trades_message(b, c, d)), Silence(3)],  # b again: a repeat
        [AwaitSubscribed(2), Send({"type": "ping"}), Send(trades_message(e))],
    ]
    stats, waits = FeedStats(), Waits()
    async with FakeFinnhub(scripts=scripts) as server:
        quotes = await take(feed(finnhub(server, stats), stats, waits).quotes(), 4)
        assert server.script_errors == []
        assert [conn.subscribed for conn in server.connections] == [["AAPL", "MSFT"]] * 3
    assert [(q.symbol, q.price, q.volume, q.volume_only) for q in quotes] == [
        ("AAPL", 100.0, 10.0, False),
        ("MSFT", 400.0, 3.0, True),
        ("AAPL", 99.0, 4.0, False),
        ("AAPL", 102.0, 1.0, False),
    ]
    assert (stats.trades, stats.published, stats.repeats) == (6, 4, 1)
    assert (stats.not_counted, stats.volume_only, stats.malformed) == (1, 1, 1)  # b once
    assert stats.reconnects == 2
    # Connections that the service ends at once keep the waits growing.
    assert waits.delays == [0.5, 1.0]


async def test_finnhub_refused_key_stops_at_once():
    stats, waits = FeedStats(), Waits()
    async with FakeFinnhub() as server:
        with pytest.raises(FeedRefused, match="API key was refused.*401"):
            await take(feed(finnhub(server, stats, token="bad"), stats, waits).quotes(), 1)
    assert waits.delays == []


async def test_finnhub_too_many_symbols_names_the_plan_limit():
    stats, waits = FeedStats(), Waits()
    async with FakeFinnhub(max_symbols=1, scripts=[[AwaitSubscribed(1)]]) as server:
        with pytest.raises(FeedRefused, match="too many symbols: 2 symbols asked for"):
            await take(feed(finnhub(server, stats), stats, waits).quotes(), 1)
    assert stats.service_errors == {TOO_MANY_SYMBOLS["msg"]: 1}


async def test_a_service_that_is_down_is_retried_with_growing_waits():
    stats, waits = FeedStats(), Waits()
    dialogue = FinnhubDialogue(f"ws://127.0.0.1:{closed_port()}", "k", ["AAPL"], stats, 0.5)
    quotes = feed(dialogue, stats, waits).quotes()
    with pytest.raises(TimeoutError):
        await take(quotes, 1, timeout=1.0)
    assert waits.delays[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert all(d <= 30.0 for d in waits.delays)  # the ceiling (60) times the jitter


async def test_a_cancellation_as_the_handshake_ends_stops_the_feed():
    """Ctrl-C (or a caller's timeout) arriving in the same turn of the event loop as the end of
    the handshake: Python 3.11's ``asyncio.wait_for`` returned the handshake's result and lost
    the cancellation, and the feed went on (a test looping on a refused connection hung so,
    now and then). The feed must end."""
    consumer: asyncio.Task | None = None

    class CancelledAsItOpens(FinnhubDialogue):
        async def open(self, ws):
            opened = await super().open(ws)
            assert consumer is not None
            asyncio.get_running_loop().call_soon(consumer.cancel)
            return opened

    stats, waits = FeedStats(), Waits()
    async with FakeFinnhub(scripts=[[AwaitSubscribed(1)]]) as server:
        dialogue = CancelledAsItOpens(server.url, "test-token", ["AAPL"], stats, idle_seconds=30)
        quotes = feed(dialogue, stats, waits).quotes()
        consumer = asyncio.ensure_future(anext(quotes))
        done, _ = await asyncio.wait([consumer], timeout=5)
        assert consumer in done and consumer.cancelled()
        await quotes.aclose()


def alpaca(server, stats: FeedStats, feed="iex", secret="test-secret", symbols=("AAPL", "MSFT")):
    return AlpacaDialogue(
        server.stream_url, "test-key", secret, feed, list(symbols), stats, channel="trades"
    )


def atrade(symbol: str, price: float, size: int, ms: int, trade_id: int, conditions=("@",)):
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return fake_alpaca.trade(symbol, price, size, stamp + "123Z", trade_id, list(conditions))


async def test_alpaca_authenticates_and_subscribes_again_after_a_drop_and_a_dead_connection():
    a = atrade("AAPL", 100.0, 10, T0, 1)
    b = atrade("MSFT", 400.0, 3, T0 + 5, 2, ("@", "I"))  # odd lot: volume only
    c = atrade("AAPL", 101.0, 7, T0 + 9, 3, ("M",))  # official close: nothing
    d = atrade("AAPL", 102.0, 1, T0 + 20, 4)
    scripts = [
        [AwaitSubscribed(2), Send([a, b]), Drop()],
        [AwaitSubscribed(2), Send([b, c]), Silence(5)],  # b again: a repeat; then dead
        [AwaitSubscribed(2), Send([d])],
    ]
    stats, waits = FeedStats(), Waits()
    async with fake_alpaca.FakeAlpaca(scripts=scripts, ping_every=0) as server:
        dialogue = alpaca(server, stats)
        quotes = await take(feed(dialogue, stats, waits, heartbeat=0.4).quotes(), 3)
        assert server.script_errors == []
        assert [(c.authenticated, c.trades) for c in server.connections] == [
            (True, ["AAPL", "MSFT"])
        ] * 3
    assert [(q.symbol, q.price, q.volume_only, q.id.split(":")[2]) for q in quotes] == [
        ("AAPL", 100.0, False, "1"),
        ("MSFT", 400.0, True, "2"),
        ("AAPL", 102.0, False, "4"),
    ]
    assert quotes[0].ts == T0  # "....000123Z": microseconds below the millisecond are cut
    assert (stats.repeats, stats.not_counted, stats.reconnects) == (1, 1, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret": "wrong"}, "error 402: auth failed"),
        ({"feed": "sip"}, "error 409: insufficient subscription.*--feed iex"),
        ({"symbols": ("A", "B", "C")}, "error 405: symbol limit exceeded: 3 symbols.*allows 30"),
    ],
)
async def test_alpaca_refusals_stop_the_source_naming_the_cause(options, message):
    stats, waits = FeedStats(), Waits()
    async with fake_alpaca.FakeAlpaca(max_symbols=2, scripts=[[AwaitSubscribed(9)]]) as server:
        with pytest.raises(FeedRefused, match=message) as refused:
            await take(feed(alpaca(server, stats, **options), stats, waits).quotes(), 1)
    assert "wrong" not in str(refused.value) and "test-secret" not in str(refused.value)
    assert waits.delays == []


async def test_alpaca_connection_limit_is_retried():
    stats, waits = FeedStats(), Waits()
    async with fake_alpaca.FakeAlpaca(scripts=[[AwaitSubscribed(2), Sleep(30)]]) as server:
        first = feed(alpaca(server, FeedStats()), FeedStats(), Waits()).quotes()
        holder = asyncio.ensure_future(take(first, 1, timeout=30))
        await server.wait_connections(1)
        while not server.connections[0].trades:
            await asyncio.sleep(0.01)
        second = feed(alpaca(server, stats), stats, waits).quotes()
        with pytest.raises(TimeoutError):
            await take(second, 1, timeout=1.0)
        holder.cancel()
    assert waits.delays and stats.service_errors["406 connection limit exceeded"] >= 1


async def test_alpaca_minute_bars_and_their_updates():
    stamp = "2025-12-04T14:30:00Z"  # T0
    first = fake_alpaca.bar("AAPL", stamp, 10.0, 11.0, 9.5, 10.5, 1200)
    updated = {**fake_alpaca.bar("AAPL", stamp, 10.0, 11.2, 9.5, 10.7, 1300), "T": "u"}
    scripts = [[AwaitSubscribed(1, channel="bars"), Send([first]), Send([updated])]]
    stats, waits = FeedStats(), Waits()
    async with fake_alpaca.FakeAlpaca(scripts=scripts) as server:
        dialogue = AlpacaDialogue(
            server.stream_url, "test-key", "test-secret", "iex", ["AAPL"], stats, "bars"
        )
        bars = await take(feed(dialogue, stats, waits).quotes(), 2)
        assert server.connections[0].bars == ["AAPL"] and server.connections[0].trades == []
    assert [(b.ts, b.bar_seconds, b.high, b.price, b.volume, b.id) for b in bars] == [
        (T0, 60, 11.0, 10.5, 1200.0, None),  # the producer names it bar:<start>:60 ...
        (T0, 60, 11.2, 10.7, 1300.0, None),  # ... so the update revises it
    ]


def test_keys_come_from_their_variables_or_files(tmp_path, monkeypatch):
    from stockapp.settings import load_settings

    key = tmp_path / "finnhub"
    key.write_text("from-a-file\n")
    secret = tmp_path / "alpaca"
    secret.write_text("s3cret-from-a-file")
    monkeypatch.setenv("STOCKAPP_FINNHUB_API_KEY_FILE", str(key))
    monkeypatch.setenv("APCA_API_KEY_ID", "id-from-a-variable")
    monkeypatch.setenv("STOCKAPP_ALPACA_API_SECRET_KEY_FILE", str(secret))
    settings = load_settings()
    assert settings.finnhub_key == "from-a-file"
    assert (settings.alpaca_key_id, settings.alpaca_secret) == (
        "id-from-a-variable",
        "s3cret-from-a-file",
    )
    assert {"from-a-file", "id-from-a-variable", "s3cret-from-a-file"} <= set(settings.secrets)


async def test_alpaca_trades_of_two_symbols_with_one_id_are_two_trades():
    """Alpaca's trade ids count per symbol and exchange: the same id on two symbols (or on two
    days) is not a repeat."""
    same = [atrade("AAPL", 100.0, 1, T0, 628), atrade("MSFT", 400.0, 1, T0, 628)]
    stats, waits = FeedStats(), Waits()
    async with fake_alpaca.FakeAlpaca(scripts=[[AwaitSubscribed(2), Send(same)]]) as server:
        quotes = await take(feed(alpaca(server, stats), stats, waits).quotes(), 2)
    assert [q.symbol for q in quotes] == ["AAPL", "MSFT"] and stats.repeats == 0
