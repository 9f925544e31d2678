"""ISO-8601 times to epoch milliseconds, shared by record validation and the API."""

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
    # Integer arithmetic: float timestamps can be off by one millisecond.
    return (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
