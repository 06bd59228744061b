"""DirectFramesProtocol: frames reach the app's sink straight from the parser, in order with
what still goes through `receive`, and a failing sink hands everything back to `receive`.

Served by a real uvicorn on loopback with the protocol as its `ws` class, driven by a
`websockets` client, as Twilio's side would be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn
from websockets.asyncio.client import connect

from voice_agent.demo import free_port
from voice_agent.telephony.direct_frames import DIRECT_FRAMES, DirectFramesProtocol

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await handler(scope, receive, send)

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=DirectFramesProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up failure
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def _accept(receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})


async def test_the_sink_takes_frames_and_declined_ones_come_through_receive() -> None:
    taken: list[bytes] = []
    received: list[str] = []

    def sink(frame: bytes) -> bool:
        if frame == b"end":
            return False
        taken.append(frame)
        return True

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _accept(receive, send)
        scope["extensions"][DIRECT_FRAMES](sink)
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])
            if message["text"] == "end":
                await send({"type": "websocket.send", "text": f"took {len(taken)}"})

    async with serving(handler) as url, connect(url) as ws:
        for n in range(20):
            await ws.send(f"frame {n}")
        await ws.send("end")
        assert await ws.recv() == "took 20"

    assert taken == [f"frame {n}".encode() for n in range(20)]
    assert received == ["end"]


async def test_frames_queued_before_the_sink_keep_their_order() -> None:
    taken: list[str] = []
    received: list[str] = []

    def sink(frame: bytes) -> bool:
        if frame == b"end":
            return False
        taken.append(frame.decode())
        return True

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _accept(receive, send)
        # The client's first frames arrive while nothing reads: they wait in the queue.
        await asyncio.sleep(0.2)
        scope["extensions"][DIRECT_FRAMES](sink)
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])
            if message["text"] == "end":
                await send({"type": "websocket.send", "text": "done"})

    async with serving(handler) as url, connect(url) as ws:
        for n in range(5):
            await ws.send(f"early {n}")
        await asyncio.sleep(0.4)
        for n in range(5):
            await ws.send(f"late {n}")
        await ws.send("end")
        assert await ws.recv() == "done"

    sent = [f"early {n}" for n in range(5)] + [f"late {n}" for n in range(5)]
    assert received[0] == "early 0"  # the queue held it when the sink came
    assert received[-1] == "end"
    # Whatever receive() got came before everything the sink got: one sequence, in order.
    assert received[:-1] + taken == sent
    assert taken, "once the queue had drained, frames went to the sink"


async def test_a_failing_sink_hands_that_frame_and_the_rest_to_receive() -> None:
    received: list[str] = []
    calls = 0

    def sink(frame: bytes) -> bool:
        nonlocal calls
        calls += 1
        raise ValueError("the app's own fault")

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _accept(receive, send)
        scope["extensions"][DIRECT_FRAMES](sink)
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])
            if len(received) == 3:
                await send({"type": "websocket.send", "text": "got 3"})

    async with serving(handler) as url, connect(url) as ws:
        for n in range(3):
            await ws.send(f"frame {n}")
        assert await ws.recv() == "got 3"

    assert calls == 1  # removed after its first failure
    assert received == ["frame 0", "frame 1", "frame 2"]


async def test_the_sink_can_be_removed() -> None:
    received: list[str] = []
    taken: list[bytes] = []

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _accept(receive, send)
        set_sink = scope["extensions"][DIRECT_FRAMES]

        def sink(frame: bytes) -> bool:
            taken.append(frame)
            set_sink(None)  # as the media socket does on a stream's `stop`
            return True

        set_sink(sink)
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])
            if len(received) == 2:
                await send({"type": "websocket.send", "text": "ok"})

    async with serving(handler) as url, connect(url) as ws:
        for n in range(3):
            await ws.send(f"frame {n}")
        assert await ws.recv() == "ok"

    assert taken == [b"frame 0"]
    assert received == ["frame 1", "frame 2"]
