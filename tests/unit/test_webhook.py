"""Webhook delivery: retried with backoff while the receiver may still take it, dead-lettered
at once on an answer that will not change, and each POST keyed for the receiver to dedupe."""

from __future__ import annotations

import aiohttp
import pytest

from stockapp.sinks.webhook import deliver


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


async def run(post, tries=5):
    slept: list[float] = []

    async def sleep(seconds):
        slept.append(seconds)

    outcome = await deliver(
        post, "http://127.0.0.1:1/hook", "AAPL|5m|x|1", b"{}", tries, 2.0, sleep
    )
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


@pytest.mark.parametrize("answer", [429, 408, 500, TimeoutError()])
async def test_a_receiver_that_never_takes_it_is_given_up_after_the_tries(answer):
    post, calls = receiver(answer)
    outcome, slept = await run(post, tries=8)
    assert not outcome.delivered and outcome.attempts == 8 and len(calls) == 8
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    expected = "no answer: TimeoutError" if isinstance(answer, Exception) else f"HTTP {answer}"
    assert outcome.reason == expected
