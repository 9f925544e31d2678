"""DurableTable keeps every changelog record's future until its writer has awaited it:
Faust's own flush before a commit can return with records still in its buffer."""

import asyncio

import faust

from stockapp.faust_compat import DurableTable


async def test_changelog_sent_waits_for_every_record_written(monkeypatch):
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Future] = []

    def send_changelog(self, *args, **kwargs):
        future = loop.create_future()
        sent.append(future)
        return future

    monkeypatch.setattr(faust.Table, "send_changelog", send_changelog)
    table = DurableTable.__new__(DurableTable)
    table._unsent = []
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
