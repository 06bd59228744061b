"""The Media Streams socket as a raw ASGI app: Starlette's WebSocket, lighter per message.

A call receives 50 frames a second and sends two per 160 ms of agent audio, so at a few
hundred calls the per-message layers count. Starlette's `WebSocket.receive` and `send`
re-check the connection state on every message and add a coroutine frame each; once the
socket is accepted, `receive` here is the server's own ASGI receive (no layer at all) and
`send_text` makes one state check. Route matching and the connection set-up (headers,
accept, close) stay Starlette's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

_CONNECTED = WebSocketState.CONNECTED


class MediaWebSocket(WebSocket):
    """After `accept`, `receive()` hands back the server's messages untouched: the caller
    must handle ``websocket.disconnect`` itself (and call receive no more after it)."""

    async def accept(self, subprotocol: str | None = None, headers: object | None = None) -> None:
        await super().accept(subprotocol, headers)  # type: ignore[arg-type]
        # An instance attribute shadows the checked method: no wrapper per message.
        self.receive = self._receive  # type: ignore[method-assign]

    async def send_text(self, data: str) -> None:
        if self.application_state is not _CONNECTED:
            if self.application_state is WebSocketState.DISCONNECTED:
                # Closed by either side: to a sender that is the peer being gone.
                raise WebSocketDisconnect(code=1006)
            await super().send_text(data)  # raises the usual state error
            return
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError:
            # As Starlette's send: the peer is gone.
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(code=1006) from None


class MediaSocketApp:
    """ASGI app for one route: wraps each connection in a MediaWebSocket for `handle`.

    Given to `WebSocketRoute` as an object (not a function), Starlette passes it the raw
    scope, receive and send instead of building its own WebSocket.
    """

    __slots__ = ("_handle",)

    def __init__(self, handle: Callable[[WebSocket], Awaitable[None]]) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handle(MediaWebSocket(scope, receive, send))
