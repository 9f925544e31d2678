"""Fixtures shared by every test."""

from __future__ import annotations

import uuid

import pytest

from stockapp.settings import Settings, load_settings


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic and keyspace names, so runs never see each other's data."""
    return uuid.uuid4().hex[:10]
