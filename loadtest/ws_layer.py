"""Server CPU per inbound websocket text frame, by uvicorn ws implementation and app shape.

    python -m loadtest.ws_layer [--ws websockets-sansio,direct,websockets,wsproto]
        [--shape starlette,route,asgi] [--connections 200] [--messages 500] [--server-cpu 0]
        [--patch FILE]

Runs a uvicorn server (uvloop, httptools) in a child process with a minimal media
endpoint that parses every frame the way /twilio/media does (orjson + base64), then
drives it from this process with `websockets` clients sending Twilio-shaped media frames
every 20 ms each, as Twilio does (200 connections: 10,000 frames a second). The figure
is the server process's CPU time (user + system, from /proc) divided by the frames it
received: more robust against other load on the machine than wall time. `--patch` runs
a Python file in the server before it starts, to try a change to a library's protocol
without editing it (the README names the one tried).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from voice_agent.telephony.protocol import Outbound

_SERVER = r"""
import sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from voice_agent.telephony.protocol import parse

ws_impl, shape, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if ws_impl == "direct":
    ws_impl = "voice_agent.telephony.direct_frames:DirectFramesProtocol"
if len(sys.argv) > 4:  # an experiment's patch, run before the server starts
    exec(open(sys.argv[4]).read())

async def starlette_endpoint(websocket):
    await websocket.accept()
    n = 0
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            break
        parse(message.get("text"))
        n += 1

def sink(frame):
    parse(frame)
    return True

async def asgi_endpoint(scope, receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    set_sink = scope.get("extensions", {}).get("voice_agent.direct_frames")
    if set_sink is not None:  # --ws direct: frames go to the sink, as /twilio/media's do
        set_sink(sink)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        parse(message.get("text"))

if shape == "starlette":
    app = Starlette(routes=[WebSocketRoute("/twilio/media", starlette_endpoint)])
elif shape == "route":  # Starlette routes the connection; the endpoint is raw ASGI
    class Endpoint:
        async def __call__(self, scope, receive, send):
            await asgi_endpoint(scope, receive, send)
    app = Starlette(routes=[WebSocketRoute("/twilio/media", Endpoint())])
else:
    app = asgi_endpoint
uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", ws=ws_impl,
            ws_per_message_deflate=False, log_level="warning", lifespan="off")
"""


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(port: int, connections: int, messages: int, pace_s: float = 0.02) -> None:
    import websockets

    frame = (
        Outbound("MZ" + "0" * 32)
        .media(b"\xff" * 160)
        .replace(
            '"media":{',
            '"sequenceNumber":"5","media":{"track":"inbound","chunk":"3","timestamp":"60",',
        )
    )

    async def one() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/twilio/media", compression=None, max_queue=None
        ) as ws:
            # Paced like Twilio (one frame per 20 ms per call): each frame is its own
            # socket read on the server, which is the cost that matters at load.
            loop = asyncio.get_running_loop()
            due = loop.time()
            for _ in range(messages):
                await ws.send(frame)
                due += pace_s
                await asyncio.sleep(max(0.0, due - loop.time()))

    await asyncio.gather(*(one() for _ in range(connections)))


async def _wait_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("server did not start")


def measure(
    ws_impl: str,
    shape: str,
    connections: int,
    messages: int,
    cpu: int | None,
    patch: str | None = None,
) -> float:
    """µs of server CPU per inbound frame."""
    from voice_agent.demo import free_port

    port = free_port()
    command = [sys.executable, "-c", _SERVER, ws_impl, shape, str(port)]
    if patch:
        command.append(patch)
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    server = subprocess.Popen(command)
    try:
        asyncio.run(_wait_port(port))
        asyncio.run(_drive(port, 2, 200))  # warm-up: imports, first connections
        time.sleep(0.3)
        before = _cpu_s(server.pid)
        asyncio.run(_drive(port, connections, messages))
        time.sleep(0.5)  # the server drains what is still queued
        used = _cpu_s(server.pid) - before
    finally:
        server.terminate()
        server.wait()
    return used / (connections * messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", default="websockets-sansio,direct,websockets,wsproto")
    parser.add_argument("--shape", default="starlette,route,asgi")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--patch", help="a Python file the server runs first (experiments)")
    args = parser.parse_args()
    for ws_impl in args.ws.split(","):
        for shape in args.shape.split(","):
            runs = [
                measure(
                    ws_impl, shape, args.connections, args.messages, args.server_cpu, args.patch
                )
                for _ in range(args.repeat)
            ]
            shown = " ".join(f"{r:.1f}" for r in runs)
            print(f"{ws_impl:18} {shape:10} µs server CPU per frame: {shown}", flush=True)


if __name__ == "__main__":
    main()
