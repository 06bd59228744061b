"""A loopback events receiver (n8n's Webhook node, or any receiver of our signed events):
it verifies each POST with the ``standardwebhooks`` package as a real receiver would, and
keeps what arrived. Faults are switched by the test: answer a status to the next N
requests, fail a share of requests at random (500), answer one status to everything, or
be down (connections refused: the server is stopped, and started again on its port)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.standins.embedded import EmbeddedServer


@dataclass(slots=True)
class Arrival:
    event: dict[str, Any]
    headers: dict[str, str]
    path: str
    at: float  # time.time() when it arrived
    status: int  # what the receiver answered
    body: bytes = b""  # exactly as received


@dataclass
class EventReceiver:
    """``secrets``: the path's secret (``/`` by default; a tenant's own webhook may be
    served on another path with its own secret)."""

    secret: str
    secrets: dict[str, str] = field(default_factory=dict)
    fail_share: float = 0.0  # share of requests answered 500 at random
    always: int | None = None  # answer this status to every request
    rng: random.Random = field(default_factory=lambda: random.Random(12))
    arrivals: list[Arrival] = field(default_factory=list)  # every attempt, verified
    forged: int = 0  # requests whose signature did not verify
    _next: list[int] = field(default_factory=list)
    _server: EmbeddedServer | None = None
    port: int = 0

    # --- faults ---------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500) -> None:
        self._next.extend([status] * count)

    async def down(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def up(self) -> None:
        assert self._server is not None
        if not self._server.running:
            await self._server.start(self.port)

    # --- what arrived ---------------------------------------------------------------

    @property
    def accepted(self) -> list[Arrival]:
        """Attempts answered 2xx, in arrival order."""
        return [a for a in self.arrivals if 200 <= a.status < 300]

    def accepted_events(self) -> list[dict[str, Any]]:
        """The events received (answered 2xx), each once (a receiver dedupes by id)."""
        seen: set[str] = set()
        out = []
        for arrival in self.accepted:
            if arrival.event["id"] not in seen:
                seen.add(arrival.event["id"])
                out.append(arrival.event)
        return out

    def attempts(self, event_id: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.event["id"] == event_id]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- the server -----------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        secret = self.secrets.get(path, self.secret)
        try:
            # Exactly a receiver's check: the raw body, the three headers, the secret.
            Webhook(secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.forged += 1
            return JSONResponse({"error": str(exc)}, status_code=401)
        event = orjson.loads(body)
        if self._next:
            status = self._next.pop(0)
        elif self.always is not None:
            status = self.always
        elif self.fail_share and self.rng.random() < self.fail_share:
            status = 500
        else:
            status = 200
        self.arrivals.append(Arrival(event, dict(request.headers), path, time.time(), status, body))
        return JSONResponse({"ok": status < 300}, status_code=status)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{path:path}", self.receive, methods=["POST"])],
        )

    async def start(self) -> str:
        self._server = EmbeddedServer(self.app(), "event receiver")
        self.port = await self._server.start(self.port)
        return self.url()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
