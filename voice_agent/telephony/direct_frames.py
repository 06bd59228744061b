"""uvicorn's websocket protocol, with a way for the media socket to take frames straight off it.

A call receives 50 frames a second. Through ASGI each one costs a queue put, a future and a
task wake-up, the `receive` coroutine, and a pause and resume of the socket's reading (uvicorn
pauses reading until the app has taken each message). The media socket handles media, marks
and DTMF synchronously anyway, so once its call has started it hands this protocol a sink,
and frames go from the parser to the sink in the same callback: 28 µs of server CPU a frame
instead of 37 (`python -m loadtest.ws_layer --ws websockets-sansio,direct --shape asgi`).

The sink says whether it took the frame. What it does not take (the stream's `stop`, say)
goes through the ASGI queue as before, and so does every frame while the queue still holds
one, so the app sees frames in the order they came. Any ASGI server works without this: the
scope then carries no setter and the socket reads through `receive`.

Run with `uvicorn --ws voice_agent.telephony.direct_frames:DirectFramesProtocol`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

__all__ = ["DIRECT_FRAMES", "DirectFramesProtocol", "FrameSink", "SetFrameSink"]

log = logging.getLogger(__name__)

DIRECT_FRAMES = "voice_agent.direct_frames"
"""Key in the scope's ``extensions`` of the setter: ``set_sink(sink)`` or ``set_sink(None)``."""

FrameSink = Callable[[bytes], bool]
"""Takes one whole message's payload (text frames as UTF-8 bytes); True when it handled it."""

SetFrameSink = Callable[[FrameSink | None], None]


class DirectFramesProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` that offers each connection a direct frame sink."""

    _sink: FrameSink | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = self.__dict__.get("scope")  # unset when the upgrade was refused
        if scope is not None:
            scope["extensions"][DIRECT_FRAMES] = self._set_sink

    def connection_lost(self, exc: Exception | None) -> None:
        # The setter in the scope is a method of this protocol, so the two hold each other
        # with the connection's buffers: without this, only a full collection frees them.
        scope = self.__dict__.get("scope")
        if scope is not None:
            scope["extensions"].pop(DIRECT_FRAMES, None)
        self._sink = None
        super().connection_lost(exc)

    def _set_sink(self, sink: FrameSink | None) -> None:
        self._sink = sink

    def send_receive_event_to_app(self) -> None:
        sink = self._sink
        if (
            sink is not None
            and len(self.frames) == 1
            and not self.close_sent
            and self.queue.empty()  # earlier frames still queued: keep the order
        ):
            try:
                taken = sink(self.frames[0])
            except Exception:
                # The app's receive loop gets this frame and any later ones, and meets the
                # same fault where it can end the call in order.
                log.exception("direct frame sink failed; frames go through receive() now")
                self._sink = None
                taken = False
            if taken:
                self.frames = []
                return
        super().send_receive_event_to_app()
