"""Epoch milliseconds to and from ISO-8601 text and datetimes, for validation, the sinks
and the API. Integer arithmetic throughout: float timestamps can be off by a millisecond."""

from __future__ import annotations

import datetime as dt

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class NoUtcOffset(ValueError):
    """The time has no offset: reading it as local time would be a guess."""


def iso_to_epoch_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 time with an offset; ValueError if it is not ISO-8601."""
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise NoUtcOffset(text)
    return (parsed - _EPOCH) // dt.timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> dt.datetime:
    """An aware UTC datetime (what the Cassandra driver stores as a timestamp)."""
    return _EPOCH + dt.timedelta(milliseconds=ms)


def datetime_to_ms(value: dt.datetime) -> int:
    """Epoch ms of a datetime; a naive one is UTC (the Cassandra driver returns those)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)
