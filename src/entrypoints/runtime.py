"""What keeps a process that runs the use cases going beside them: its containers' resources, its
node number, and the loops that carry events to the feeds. The HTTP server's lifespan and a program
that embeds feedcore (:mod:`feedcore.entrypoints.embedding`) both run it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from feedcore import Outbox
from feedcore.entrypoints.container import Containers, awaited, node_lease
from feedcore.entrypoints.loops import run_in_process_worker, run_retention
from feedcore.entrypoints.migrations import migrate_database
from feedcore.entrypoints.processes import consume, relay_to_kafka
from feedcore.entrypoints.settings import Settings

#: The ledger's name for the fan-out worker that runs in the process that stores the events.
IN_PROCESS_CONSUMER = "feedcore-in-process"
#: How long a loop may take to finish its batch in hand when the process stops; then it is
#: cancelled, and its transaction rolls back.
_STOP_SECONDS = 5.0


@contextlib.asynccontextmanager
async def background_work(
    built: Containers, settings: Settings, *, kafka_processor: bool = False
) -> AsyncIterator[None]:
    """Open ``built``'s resources (and migrate the schema when the settings say so), lease this
    process's node number, and run until the block ends:

    - with Kafka, the outbox relay to it, and with ``kafka_processor`` a member of the processor
      group too (`feedcore serve` leaves that to `feedcore process`);
    - without, the fan-out worker that relays the outbox to a bus in this process and applies it;
    - on PostgreSQL, the pruning of expired rows.

    On the way out the loops stop first, then the resources close.
    """
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as held:
        await awaited(built.storage.init_resources())
        held.push_async_callback(lambda: awaited(built.storage.shutdown_resources()))
        if settings.database_url and settings.migrate_on_start:
            await migrate_database(settings)
        await held.enter_async_context(node_lease(built))
        held.push_async_callback(_stopped, stop, tasks)  # first on the way out
        outbox: Outbox = await awaited(built.storage.outbox())
        metrics = built.app.metrics()
        if settings.kafka_bootstrap:
            tasks.append(asyncio.create_task(relay_to_kafka(settings, outbox, stop, metrics)))
            if kafka_processor:
                tasks.append(asyncio.create_task(consume(settings, built, stop, metrics)))
        else:
            processor = await awaited(built.app.processor(consumer=IN_PROCESS_CONSUMER))
            bus = built.app.bus()
            worker = run_in_process_worker(outbox, bus, processor, stop, metrics, rewind=bus.rewind)
            tasks.append(asyncio.create_task(worker))
        retention = await awaited(built.storage.retention())
        if retention is not None:
            pruning = run_retention(retention, stop, metrics, every=settings.prune_every_seconds)
            tasks.append(asyncio.create_task(pruning))
        yield


async def _stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    for task in tasks:
        # A batch not finished in time is cancelled: its transaction rolls back.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=_STOP_SECONDS)
