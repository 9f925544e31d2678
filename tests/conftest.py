"""Fixtures shared by every test."""

from __future__ import annotations

import os
import uuid

import pytest

# The tests' streams run on synthetic clocks (2026-01-05 14:00 UTC, the epoch, ...), not in an
# exchange's trading hours: they run on the always-open calendar, set before anything reads
# the settings (and inherited by the workers and CLIs they start). A test about sessions names
# its exchange; tests/unit/test_settings.py checks the shipped default (XNYS) without this.
# Set outright: a shell that exported another calendar must not change what the tests see.
os.environ["STOCKAPP_EXCHANGE"] = "ALWAYS_OPEN"
for _name in ("STOCKAPP_SESSION_HOURS", "STOCKAPP_INTRADAY_ANCHOR"):
    os.environ.pop(_name, None)

from stockapp.settings import Settings, load_settings  # noqa: E402


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic and keyspace names, so runs never see each other's data."""
    return uuid.uuid4().hex[:10]
