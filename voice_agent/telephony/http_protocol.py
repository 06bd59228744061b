"""uvicorn's httptools protocol, letting go of its parser once a connection is a websocket.

The protocol and its parser hold each other (the parser calls back into the protocol).
uvicorn breaks the pair in ``connection_lost``, but a connection upgraded to a websocket
(every call's media stream) has been handed to the websocket protocol by then, so the
HTTP protocol never hears of the loss: each call left the pair, its request headers and
flow control in a reference cycle for the full collections, which the server avoids
(voice_agent/heap.py). After the upgrade the parser is never used again.

Run with `uvicorn --http voice_agent.telephony.http_protocol:HttpProtocol`.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpProtocol"]


class HttpProtocol(HttpToolsProtocol):
    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]
