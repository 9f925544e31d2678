"""DurableTable keeps every changelog record's future until its writer has awaited it:
Faust's own flush before a commit can return with records still in its buffer."""

import asyncio

import faust

from stockapp.faust_compat import DurableTable


def bare_table(monkeypatch, producer_max_request_size: int = 1_000_000) -> DurableTable:
    """A DurableTable without an app's machinery: the fields its own methods read."""
    table = DurableTable.__new__(DurableTable)
    table._unsent = []
    conf = type("Conf", (), {"producer_max_request_size": producer_max_request_size})
    table.app = type("App", (), {"conf": conf})
    monkeypatch.setattr(DurableTable, "name", "symbol-state", raising=False)
    return table


async def test_changelog_sent_waits_for_every_record_written(monkeypatch):
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Future] = []

    def send_changelog(self, *args, **kwargs):
        future = loop.create_future()
        sent.append(future)
        return future

    monkeypatch.setattr(faust.Table, "send_changelog", send_changelog)
    table = bare_table(monkeypatch)
    table.send_changelog(0, b"A", b"1")
    table.send_changelog(1, b"B", b"2")
    waiting = asyncio.ensure_future(table.changelog_sent())
    await asyncio.sleep(0.01)
    sent[0].set_result(None)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # B's record is not acknowledged yet
    sent[1].set_result(None)
    await asyncio.wait_for(waiting, 1)
    assert table._unsent == []


def test_a_value_over_the_producers_limit_is_refused_before_anything_is_stored(monkeypatch):
    """Faust's producer buffer would fail on it in a task of its own, ending the worker (and
    every restart): refused at the write instead, with the store and changelog untouched."""
    import pytest

    from stockapp.faust_compat import ChangelogRecordTooLarge

    sent = []
    monkeypatch.setattr(faust.Table, "send_changelog", lambda self, *a, **k: sent.append(a))
    table = bare_table(monkeypatch, producer_max_request_size=4096)
    with pytest.raises(ChangelogRecordTooLarge, match="5000 bytes is over the producer's limit"):
        table.send_changelog(0, b"A", b"x" * 5000)
    table.send_changelog(0, b"A", b"x" * 3000)
    assert len(sent) == 1
