"""A loopback TCP relay that a test can cut and restore, to take a real server (here
PostgreSQL) away from the app and give it back, as a network outage would; or stall, to
make it answer nothing while its connections stay open, as a wedged host would. One
connection alone (the one that sent the latest request) can be stalled or have its
packets dropped mid-stream, while new connections flow: a lossy path to a provider."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["flow", "hold", "drop"]


class _Link:
    """One relayed connection's fate: its bytes flow, are held, or are dropped."""

    __slots__ = ("flowing", "mode")

    def __init__(self) -> None:
        self.mode: Mode = "flow"
        self.flowing = asyncio.Event()
        self.flowing.set()

    def set(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "hold":
            self.flowing.clear()
        else:
            self.flowing.set()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        #: Fixed after the first start, so a restore listens where the app connects.
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        #: The connection whose client sent bytes last (the request now being answered).
        self._latest: _Link | None = None
        #: Connections accepted so far: a retry on a fresh connection shows here.
        self.connections = 0

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a crashed host would."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    def stall(self) -> None:
        """Hold every byte in both directions until ``resume``; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()
        for link in self._links:
            link.set("flow")

    def stall_latest(self) -> None:
        """Hold the bytes of the connection that sent the latest request, both ways; it
        stays open, and other and new connections flow."""
        if self._latest is not None:
            self._latest.set("hold")

    def drop_latest(self) -> None:
        """Drop every further byte of that connection, both ways, as a path that loses
        its packets would (nothing is retransmitted, nothing is closed)."""
        if self._latest is not None:
            self._latest.set("drop")

    async def aclose(self) -> None:
        self.resume()
        await self.cut()
        if self._relays:  # cut ends them; cancel only what hangs
            await asyncio.wait(self._relays, timeout=1.0)
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
            except OSError:
                writer.transport.abort()
                return
            self._open.update((writer, up_writer))
            self.connections += 1
            link = _Link()
            self._links.add(link)
            try:
                await asyncio.gather(
                    self._pump(reader, up_writer, link, upstream=True),
                    self._pump(up_reader, writer, link, upstream=False),
                    return_exceptions=True,
                )
            finally:
                self._links.discard(link)
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()
        finally:
            self._relays.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        upstream: bool,
    ) -> None:
        try:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if upstream and link.mode == "flow":
                        self._latest = link
                    await self._flowing.wait()
                    await link.flowing.wait()
                    if link.mode == "drop":
                        continue
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.transport.abort()
