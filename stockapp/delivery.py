"""How the quotes agent takes its records: from its channel's queue, many at a time.

Faust's stream hands an agent one event at a time: for each it yields to the event loop,
runs its processors (``noack_take`` is one, which fills a buffer) and sensors, and passes
the value through two async generators, and ``noack_take`` waits for its buffer through a
``wait_first`` of its own. That is most of what Faust's no-op agent costs per record once
the fetch loop hands records on without tasks (stockapp/faust_compat.py;
docs/performance.md). The conductor fills the agent's channel queue as records are fetched;
:func:`fetched_batches` takes from that queue as many as are there, and waits only when it is
empty.

What Faust's stream does to each event is done here too, in the same order: an event
fetched before a rebalance (the flow is suspended, or its generation is not the consumer's)
is acked unprocessed, as the stream skips it (RebalanceSafeConsumer refuses such acks, so
nothing is committed for it); every other event of an acked topic is tracked as unacked
(``Consumer.track_message``) before the agent sees it; and Faust's monitor is told when each
partition's records were last taken, which its stalled-stream check reads. The agent acks
each event with ``stream.ack`` once it is stored, as with ``noack_take``. Group membership,
assignment, fetching, flow control, the tables, their changelogs, standbys and recovery stay
Faust's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from stockapp import timeouts
from stockapp.faust_compat import mark_stream_inbound


async def fetched_batches(stream: Any, max_records: int, within: float) -> AsyncIterator[list[Any]]:
    """Lists of at most ``max_records`` events of the agent's ``stream``, in the order the
    fetch loop queued them. A list is handed on when it is full, or ``within`` seconds after
    the previous one once something is there (as ``noack_take(max_records, within)``), so a
    record arriving after a quiet spell goes at once, and a backlog goes in full lists.

    The stream itself is never iterated: its channel's queue is read directly. The lists
    end when Faust stops the agent (as a stream's iteration does)."""
    app = stream.app
    consumer = app.consumer
    flow_control = app.flow_control
    acking_topics = app.topics.acking_topics
    queue = stream.channel.queue
    loop = asyncio.get_running_loop()
    due = loop.time() + within
    while True:
        batch: list[Any] = []
        while len(batch) < max_records:
            try:
                if not queue.empty():
                    event = queue.get_nowait()
                elif batch and loop.time() >= due:
                    break
                else:
                    wait = due - loop.time() if batch else None
                    event = await timeouts.within(wait, queue.get())
            except TimeoutError:
                break
            except StopAsyncIteration:
                # Faust tells a stopping agent to stop reading by throwing this into its
                # channel's queue (``Actor.cancel``); raised out of this generator it would
                # be a RuntimeError and a "Crashed" agent in the log of every shutdown. The
                # events taken and not handed on are unacked: fetched again after a restart.
                return
            message = event.message
            if not flow_control.is_active() or message.generation_id != app.consumer_generation_id:
                # Fetched before a rebalance: skipped as Faust's stream skips it (the ack is
                # refused; the partition's next owner reads it from the committed offset).
                await stream.ack(event)
                continue
            if message.topic in acking_topics and not message.tracked:
                message.tracked = True
                consumer.track_message(message)
            batch.append(event)
        if batch:
            mark_stream_inbound(app, {event.message.tp for event in batch}, time.monotonic())
            yield batch
            due = loop.time() + within
