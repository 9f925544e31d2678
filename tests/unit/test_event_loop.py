"""STOCKAPP_EVENT_LOOP: the worker's event loop is uvloop's unless set to asyncio."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from stockapp.cli import _use_event_loop
from stockapp.settings import load_settings


@pytest.fixture
def policy():
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def test_uvloop_is_the_default(policy, monkeypatch):
    monkeypatch.delenv("STOCKAPP_EVENT_LOOP", raising=False)
    _use_event_loop(load_settings().event_loop)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_asyncio_keeps_python_s_loop(policy, monkeypatch):
    monkeypatch.setenv("STOCKAPP_EVENT_LOOP", "asyncio")
    _use_event_loop(load_settings().event_loop)
    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
