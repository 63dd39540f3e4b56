"""A TCP forwarding proxy for tests and the soak: a service behind it can be made unreachable, or
stalled, and back, at will."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


class TcpProxy:
    """Forwards each connection to 127.0.0.1:``port`` on to ``target_host``:``target_port``.

    It runs an asyncio loop in a thread of its own, so a test drives it with plain calls. ``cut()``
    makes the target vanish: the port refuses new connections and every open one is dropped at once;
    ``restore()`` listens again on the same port. ``stall()`` keeps every connection open but lets no
    byte through either way, new ones included, until ``resume()``: a network that hangs rather than
    fails. Use it as a context manager: everything stops at exit.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        #: Both ends of every forwarded connection, so that a cut can drop them all.
        self._open: set[asyncio.StreamWriter] = set()
        #: Clear while stalled; set and cleared only in the proxy's loop.
        self._flowing = asyncio.Event()
        self._flowing.set()
        #: The port it listens on; chosen by the system the first time, kept from then on.
        self.port = 0

    def __enter__(self) -> Self:
        self._thread.start()
        self.restore()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._call(self._shut_down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def cut(self) -> None:
        """Stop listening (connecting is refused) and drop every forwarded connection."""
        self._call(self._cut())

    def restore(self) -> None:
        """Listen again, on the same port."""
        self._call(self._listen())

    def stall(self) -> None:
        """Hold every byte, both ways, until :meth:`resume`."""
        self._call(self._set_flowing(flowing=False))

    def resume(self) -> None:
        self._call(self._set_flowing(flowing=True))

    # --- in the proxy's thread ----------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _set_flowing(self, *, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for end in self._open:
            end.transport.abort()  # at once: whatever is still buffered is dropped
        self._open.clear()

    async def _shut_down(self) -> None:
        await self._cut()
        # The cut ends every forwarding task; they are waited for, not cancelled: Python 3.11's
        # start_server reports a cancelled connection task as an error.
        forwarding = asyncio.all_tasks() - {asyncio.current_task()}
        if forwarding:
            _, stuck = await asyncio.wait(forwarding, timeout=5)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._open.add(client_writer)
        await self._flowing.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            self._open.discard(client_writer)
            return
        if client_writer not in self._open:  # cut while connecting to the target
            upstream_writer.transport.abort()
            return
        self._open.add(upstream_writer)
        try:
            await asyncio.gather(
                _pump(client_reader, upstream_writer, self._flowing),
                _pump(upstream_reader, client_writer, self._flowing),
            )
        finally:
            self._open.difference_update((client_writer, upstream_writer))


async def _pump(source: asyncio.StreamReader, destination: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    """Copy ``source`` to ``destination`` while ``flowing`` is set, until either end goes; then close
    ``destination``, which ends the pump of the other direction too."""
    try:
        with contextlib.suppress(OSError):  # reset by a peer, or by a cut
            while data := await source.read(64 * 1024):
                await flowing.wait()
                destination.write(data)
                await destination.drain()
    finally:
        destination.close()
