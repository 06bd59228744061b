"""A stand-in's app served by uvicorn inside the test's own process, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    # Runs inside someone else's program: leave its signal handlers alone.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """Start and stop one app on 127.0.0.1; stopped, connections to its port are refused
    until ``start`` binds the same port again (an outage a test can switch)."""

    def __init__(self, app: Any, name: str, **config: Any) -> None:
        self._app = app
        self._name = name
        self._config = {"lifespan": "off", "log_config": None, "access_log": False, "ws": "none"}
        self._config.update(config)
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self, port: int = 0) -> int:
        """Serve on ``port`` (0: any free one); returns the port once it accepts."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self._server = _QuietServer(uvicorn.Config(self._app, **self._config))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the reason it did not start
                raise RuntimeError(f"{self._name} exited during start-up")
            await asyncio.sleep(0.005)
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._server = None
            self._task = None
