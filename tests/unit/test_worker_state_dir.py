"""A worker whose state directory cannot be written stops before it asks any server, in one
line (a container's /data volume owned by another user, or mounted read-only)."""

from __future__ import annotations

import os

import pytest

from stockapp.cli import _require_writable
from stockapp.errors import StockappError


def test_a_writable_state_directory_is_created_and_left_empty(tmp_path):
    target = tmp_path / "data" / "worker-6066"
    _require_writable(target)
    assert target.is_dir() and list(target.iterdir()) == []


def test_an_unwritable_state_directory_is_one_line_naming_it_and_the_user(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a file where the data directory should be: mkdir fails for root too
    with pytest.raises(StockappError) as raised:
        _require_writable(blocked / "worker-6066")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"the worker's state directory {blocked}/worker-6066 is not writable by uid {os.getuid()}"
    )
    assert "STOCKAPP_DATA_DIR" in message
