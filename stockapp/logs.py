"""Logging for the commands that are not the Faust worker (produce, backfill, db).

One line per event, ``key=value`` style, on stderr, at ``STOCKAPP_LOG_LEVEL`` (WARNING by
default). A client library retrying against a dead broker can log the same line hundreds of
times a second; the same message from the same logger is printed at most once per
``REPEAT_WINDOW_S``, with a count of what was held back, so a restart does not bury the summary.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

REPEAT_WINDOW_S = 10.0
FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


class RepeatFilter(logging.Filter):
    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} (repeated {last[1]} more times in {self.window_s:g} s)"
        self._last[key] = (now, 0)
        return True


_secrets: tuple[str, ...] = ()
_plain_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _plain_factory(*args, **kwargs)
    if _secrets:
        text = record.getMessage()
        if any(secret in text for secret in _secrets):
            for secret in _secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
    return record


def redact_secrets(secrets: tuple[str, ...]) -> None:
    """From now on, every log record of this process (stockapp's, Faust's, the drivers') has
    these strings replaced by ``***``: a library that logs its configuration or an error that
    quotes a password cannot leak one. Only records that are emitted pay for the check."""
    global _secrets
    _secrets = tuple(s for s in secrets if s)
    logging.setLogRecordFactory(_redacting_factory)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
