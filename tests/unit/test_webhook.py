"""Webhook delivery: retried with backoff while the receiver may still take it, dead-lettered
at once on an answer that will not change, and each POST keyed for the receiver to dedupe and
signed for it to verify. Against real aiohttp servers on 127.0.0.1: a redirect is not
followed, a huge answer is not read, and records that cannot be POSTed are dead-lettered
without stopping the notifier. The settings refuse an unsigned or plain-http webhook, and the
URL and the secret never reach a log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import aiohttp
import orjson
import pytest
from aiohttp import web

from stockapp.logs import redact_secrets
from stockapp.settings import SettingsError, load_settings
from stockapp.sinks.webhook import MAX_RESPONSE_BYTES, Notifier, deliver, http_post
from stockapp.sinks.webhook_signing import SIGNATURE_HEADER
from tests.helpers import documented_verify

SECRET = "a-test-secret-of-32-characters!!"


def receiver(*answers):
    """A POST that answers each call with the next of ``answers`` (an exception is raised)."""
    calls: list[dict] = []

    async def post(url, body, headers, timeout):
        calls.append({"url": url, "body": body, "headers": headers, "timeout": timeout})
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return post, calls


async def run(post, tries=5, url="http://127.0.0.1:1/hook", body=b"{}"):
    slept: list[float] = []

    async def sleep(seconds):
        slept.append(seconds)

    outcome = await deliver(post, url, "AAPL|5m|x|1", body, tries, 2.0, sleep, secret=SECRET)
    return outcome, slept


async def test_delivered_after_retries_with_backoff_and_the_key_each_time():
    post, calls = receiver(503, aiohttp.ClientConnectionError(), 200)
    outcome, slept = await run(post)
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (True, 3, "")
    assert slept == [0.5, 1.0]
    assert {c["headers"]["Idempotency-Key"] for c in calls} == {"AAPL|5m|x|1"}
    assert all(c["headers"]["Content-Type"] == "application/json" for c in calls)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_a_refusal_that_will_not_change_is_not_retried(status):
    post, calls = receiver(status)
    outcome, slept = await run(post)
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (False, 1, f"HTTP {status}")
    assert slept == [] and len(calls) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failure_of_that_delivery_not_retried(status):
    post, calls = receiver(status)
    outcome, slept = await run(post)
    assert not outcome.delivered and outcome.attempts == 1 and len(calls) == 1
    assert outcome.reason == f"HTTP {status} (redirects are not followed)"
    assert slept == []


@pytest.mark.parametrize("answer", [429, 408, 500, TimeoutError()])
async def test_a_receiver_that_never_takes_it_is_given_up_after_the_tries(answer):
    post, calls = receiver(answer)
    outcome, slept = await run(post, tries=8)
    assert not outcome.delivered and outcome.attempts == 8 and len(calls) == 8
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    expected = "no answer: TimeoutError" if isinstance(answer, Exception) else f"HTTP {answer}"
    assert outcome.reason == expected


@pytest.mark.parametrize(
    "error", [ValueError("bad header"), TypeError(), UnicodeEncodeError("latin-1", "é", 0, 1, "no")]
)
async def test_an_error_building_the_request_fails_that_delivery_without_raising(error):
    post, calls = receiver(error)
    outcome, slept = await run(post)
    assert (outcome.delivered, outcome.attempts) == (False, 1) and len(calls) == 1
    assert outcome.reason == f"could not send: {type(error).__name__}"


# --- against real servers on 127.0.0.1 -------------------------------------------------------


@dataclass
class Server:
    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    sent: int = 0  # bytes of an answer's body the server got rid of
    done: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def serve() -> AsyncIterator:
    """Starts an aiohttp server on 127.0.0.1 (a free port) whose POST /hook is ``handler``."""
    runners: list[web.AppRunner] = []

    async def start(handler) -> Server:
        server = Server("")

        async def record(request: web.Request) -> web.StreamResponse:
            server.posts.append((dict(request.headers), await request.read()))
            return await handler(request, server)

        app = web.Application()
        app.router.add_post("/hook", record)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        server.url = f"http://127.0.0.1:{port}/hook"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


async def ok(request: web.Request, server: Server) -> web.Response:
    return web.Response(status=200, text="thanks")


async def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(auto_decompress=False)


async def test_a_redirect_to_another_port_never_gets_the_body(serve):
    elsewhere = await serve(ok)

    async def redirect(request: web.Request, server: Server) -> web.Response:
        return web.Response(status=307, headers={"Location": elsewhere.url})

    first = await serve(redirect)
    async with await session() as http:
        outcome, _ = await run(http_post(http), url=first.url, body=b'{"rule": "x"}')
    assert not outcome.delivered and outcome.attempts == 1
    assert outcome.reason == "HTTP 307 (redirects are not followed)"
    assert len(first.posts) == 1 and elsewhere.posts == []


async def test_a_huge_answer_is_not_read_past_64_kib(serve):
    chunk = b"x" * (1 << 20)

    async def huge(request: web.Request, server: Server) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_length = 300 * len(chunk)  # 300 MiB
        await response.prepare(request)
        try:
            for _ in range(300):
                await response.write(chunk)
                server.sent += len(chunk)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the client hung up: what it took is in server.sent
        finally:
            server.done.set()
        return response

    server = await serve(huge)
    async with await session() as http:
        outcome, _ = await run(http_post(http), url=server.url)
    assert outcome.delivered and outcome.attempts == 1
    await asyncio.wait_for(server.done.wait(), 30)
    # The client read 64 KiB and closed: the server could fill the sockets' buffers (a few
    # MiB on loopback), never the 300 MiB it meant to send.
    assert MAX_RESPONSE_BYTES == 64 * 1024
    assert server.sent < 32 * len(chunk), server.sent


async def test_each_post_is_signed_as_documented(serve):
    verify = documented_verify()
    server = await serve(ok)
    body = b'{"key": "AAPL|5m|x|1", "rule": "x"}'
    async with await session() as http:
        outcome, _ = await run(http_post(http), url=server.url, body=body)
    assert outcome.delivered
    [(headers, received)] = server.posts
    assert received == body
    header = headers[SIGNATURE_HEADER]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header), header
    assert abs(int(header[2:].split(",")[0]) - time.time()) < 60
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body.replace(b"x", b"y"))  # another body
    assert not verify("another-secret-of-some-length", header, body)
    stale = re.sub(r"t=\d+", f"t={int(time.time()) - 3600}", header)
    assert not verify(SECRET, stale, body)
    assert not verify(SECRET, "v1=00", body) and not verify(SECRET, "", body)


async def test_a_retry_is_signed_anew():
    post, calls = receiver(503, 200)
    clock = iter([1_000_000, 1_000_007])
    outcome = await deliver(
        post, "https://x.test/", "k", b"{}", 2, 1.0, _no_sleep, secret=SECRET, clock=clock.__next__
    )
    assert outcome.delivered
    stamps = [c["headers"][SIGNATURE_HEADER].split(",")[0] for c in calls]
    assert stamps == ["t=1000000", "t=1000007"]


async def _no_sleep(seconds: float) -> None:
    return None


# --- the notifier's loop: a record that cannot be POSTed goes to the dead-letter topic -------


class Stop(Exception):
    """Ends the fake consumer's stream."""


class FakeConsumer:
    def __init__(self, records: list) -> None:
        from aiokafka.structs import TopicPartition

        self.tp = TopicPartition("signals", 3)
        self.batches = [{self.tp: records}]
        self.commits: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        if not self.batches:
            raise Stop
        return self.batches.pop(0)

    async def commit(self, offsets: dict) -> None:
        [(tp, meta)] = offsets.items()
        self.commits.append(meta.offset)


class FakeProducer:
    def __init__(self, refuse_values_over: int | None = None) -> None:
        self.sent: list[dict] = []
        self.refuse_values_over = refuse_values_over

    async def send_and_wait(self, topic, value=None, key=None, headers=()):
        from aiokafka.errors import MessageSizeTooLargeError

        size = len(value or b"") + len(key or b"")
        if self.refuse_values_over is not None and size > self.refuse_values_over:
            raise MessageSizeTooLargeError("too large")
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": dict(headers)})


def record(offset: int, key: bytes | None, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, key=key, value=value)


def good(offset: int) -> SimpleNamespace:
    key = f"AAPL|5m|x|{offset}".encode()
    return record(offset, key, orjson.dumps({"key": key.decode(), "rule": "x"}))


def notifier_settings(url: str, monkeypatch):
    monkeypatch.setenv("STOCKAPP_SIGNAL_WEBHOOK_URL", url)
    monkeypatch.setenv("STOCKAPP_SIGNAL_WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("STOCKAPP_SIGNAL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("STOCKAPP_SIGNAL_WEBHOOK_TRIES", "1")
    return load_settings()


async def test_unusable_records_are_dead_lettered_and_the_next_is_delivered(serve, monkeypatch):
    server = await serve(ok)
    settings = notifier_settings(server.url, monkeypatch)
    records = [
        record(10, b"AAPL|5m|x|1\r\nX-Injected: 1", b'{"rule": "x"}'),  # aiohttp raised on it
        record(11, b"AAPL|5m|x|2", b"{not json"),
        record(12, b"\xff\xfe", b'{"rule": "x"}'),  # not UTF-8
        record(13, None, b'{"rule": "x"}'),
        record(14, b"AAPL|5m|x|3", None),  # a tombstone
        good(15),
    ]
    consumer, producer = FakeConsumer(records), FakeProducer()
    notifier = Notifier(settings)
    async with await session() as http:
        with pytest.raises(Stop):
            await notifier._loop(consumer, producer, http_post(http))
    assert [headers["Idempotency-Key"] for headers, _ in server.posts] == ["AAPL|5m|x|15"]
    assert consumer.commits == [11, 12, 13, 14, 15, 16]  # past each, once handled
    dead = producer.sent
    offsets = [d["headers"]["stockapp.source.offset"] for d in dead]
    assert offsets == [b"10", b"11", b"12", b"13", b"14"]
    reasons = [d["headers"]["stockapp.reason"].decode() for d in dead]
    assert reasons[0].startswith("unusable record: key is not")
    assert reasons[1] == "unusable record: value is not JSON"
    assert reasons[2].startswith("unusable record: key is not")
    assert reasons[3].startswith("unusable record: key is not")
    assert reasons[4] == "unusable record: no value"
    assert all(d["headers"]["stockapp.attempts"] == b"0" for d in dead)
    assert dead[0]["key"] == records[0].key and dead[1]["value"] == b"{not json"
    assert (notifier.delivered, notifier.dead_lettered) == (1, 5)


async def test_an_error_while_posting_dead_letters_that_record_only(monkeypatch):
    settings = notifier_settings("http://127.0.0.1:1/hook", monkeypatch)
    answers = iter([RuntimeError("a bug"), 200])

    async def post(url, body, headers, timeout):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    consumer, producer = FakeConsumer([good(1), good(2)]), FakeProducer()
    notifier = Notifier(settings)
    with pytest.raises(Stop):
        await notifier._loop(consumer, producer, post)
    assert consumer.commits == [2, 3]
    [dead] = producer.sent
    assert dead["headers"]["stockapp.reason"] == b"webhook: could not send: RuntimeError"
    assert notifier.delivered == 1


async def test_a_record_too_large_for_the_dead_letter_topic_goes_without_key_and_value(
    monkeypatch,
):
    settings = notifier_settings("http://127.0.0.1:1/hook", monkeypatch)
    huge = record(7, b"k" * 2000, b"{not json" + b" " * 5000)
    consumer, producer = FakeConsumer([huge, good(8)]), FakeProducer(refuse_values_over=1000)

    async def post(url, body, headers, timeout):
        return 200

    with pytest.raises(Stop):
        await Notifier(settings)._loop(consumer, producer, post)
    assert consumer.commits == [8, 9]
    [dead] = producer.sent
    assert dead["key"] is None and dead["value"] is None
    assert dead["headers"]["stockapp.source.offset"] == b"7"
    assert b"too large" in dead["headers"]["stockapp.reason"]


# --- settings ----------------------------------------------------------------------------


def webhook_env(monkeypatch, **values: str) -> None:
    for name in ("URL", "SECRET", "SECRET_FILE", "ALLOW_HTTP"):
        monkeypatch.delenv(f"STOCKAPP_SIGNAL_WEBHOOK_{name}", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(f"STOCKAPP_SIGNAL_WEBHOOK_{name}", value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"URL": "https://hooks.test/h?token=tok-123", "SECRET": ""},
            "STOCKAPP_SIGNAL_WEBHOOK_URL is set without STOCKAPP_SIGNAL_WEBHOOK_SECRET",
        ),
        (
            {"URL": "https://hooks.test/h?token=tok-123", "SECRET": "short"},
            "STOCKAPP_SIGNAL_WEBHOOK_SECRET must be at least 16 characters",
        ),
        (
            {"URL": "http://hooks.test/h?token=tok-123", "SECRET": SECRET},
            "STOCKAPP_SIGNAL_WEBHOOK_URL is http://",
        ),
        (
            {"URL": "HTTP://hooks.test/h?token=tok-123", "SECRET": SECRET},
            "STOCKAPP_SIGNAL_WEBHOOK_URL is http://",
        ),
        (
            {"URL": "ftp://hooks.test/h?token=tok-123", "SECRET": SECRET},
            "STOCKAPP_SIGNAL_WEBHOOK_URL=<hidden> must be an https:// URL",
        ),
        (
            {"URL": "https:///h?token=tok-123", "SECRET": SECRET},
            "STOCKAPP_SIGNAL_WEBHOOK_URL=<hidden> must be an https:// URL",
        ),
        (
            {"SECRET_FILE": "/nonexistent/webhook-secret"},
            "STOCKAPP_SIGNAL_WEBHOOK_SECRET_FILE='/nonexistent/webhook-secret' is not a readable",
        ),
    ],
)
def test_a_webhook_unsigned_or_in_the_clear_stops_at_start_in_one_line(
    monkeypatch, values, message
):
    webhook_env(monkeypatch, **values)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text and "tok-123" not in text and SECRET not in text


def test_plain_http_when_allowed_and_the_secret_from_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    webhook_env(
        monkeypatch,
        URL="http://127.0.0.1:9/hook?token=tok-123",
        SECRET_FILE=str(secret_file),
        ALLOW_HTTP="true",
    )
    settings = load_settings()
    assert settings.signal_webhook_signing_key == SECRET
    assert SECRET not in repr(settings) and "tok-123" not in repr(settings)


def test_the_url_and_the_secret_never_reach_a_log_line(monkeypatch, caplog):
    url = "https://user:pw-456@hooks.test/hook?token=tok-123"
    webhook_env(monkeypatch, URL=url, SECRET=SECRET)
    settings = load_settings()
    plain = logging.getLogRecordFactory()
    try:
        redact_secrets(settings.secrets)
        with caplog.at_level(logging.INFO):
            log = logging.getLogger("some.library")
            log.info("POST %s failed", url)
            log.info("signing with %s", SECRET)
            log.info("query %s, password %s", "token=tok-123", "pw-456")
    finally:
        logging.setLogRecordFactory(plain)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "tok-123" not in text and "pw-456" not in text and SECRET not in text
    assert "hooks.test" not in text  # the whole URL went, not only its secret parts
