"""A bounded await that cannot swallow a cancellation.

Python 3.11's ``asyncio.wait_for`` returns the result when the caller is cancelled just as the
awaited call completes, losing the cancellation (fixed in 3.12): a feed or an agent told to stop
would go on. ``asyncio.timeout`` has no such race; ruff bans ``wait_for`` in the package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float | None, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, raising ``TimeoutError`` (and cancelling it) after ``seconds``
    (``None``: no bound)."""
    async with asyncio.timeout(seconds):
        return await awaitable
