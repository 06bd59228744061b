"""`voice-agent demo`: the server on a free port and one simulated phone call through the
real webhook and media websocket, printed turn by turn. No keys, no network."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import sys
from collections.abc import AsyncIterator

import uvicorn
from rich.console import Console
from rich.table import Table

from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.fixtures import load_script
from voice_agent.app import create_app
from voice_agent.pipelines import PipelineUnavailable
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings, load_settings
from voice_agent.storage.records import StoredCall
from voice_agent.telephony.direct_frames import DirectFramesProtocol
from voice_agent.telephony.http_protocol import HttpProtocol
from voice_agent.telephony.protocol import MAX_SOCKET_MESSAGE_BYTES

#: The demo caller: answers the receptionist, cuts in once, asks a question, says goodbye.
DEMO_SCRIPT: tuple[tuple[str, float | None], ...] = (
    ("greeting_reply", None),
    ("need", None),
    ("budget", None),
    ("interrupt", 700.0),
    ("timing", None),
    ("hours", None),
    ("goodbye", None),
)


def demo_turns() -> list[CallerTurn]:
    utterances = {u.id: u for u in load_script()}
    return [CallerTurn(utterances[name], barge_in_after_ms=barge) for name, barge in DEMO_SCRIPT]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: How long the in-process server waits for open connections when it stops.
SHUTDOWN_GRACE_S = 15.0


@contextlib.asynccontextmanager
async def running_server(settings: Settings, **app_options: object) -> AsyncIterator[Runtime]:
    """Serve the app on settings.public_base_url's port in this event loop."""
    app = create_app(settings, **app_options)  # type: ignore[arg-type]
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=DirectFramesProtocol,
        http=HttpProtocol,
        lifespan="on",
        ws_per_message_deflate=False,
        ws_max_size=MAX_SOCKET_MESSAGE_BYTES,
        # A connection a caller left open must not hold the shutdown (and a test) forever.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises the start-up failure
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        yield app.state.runtime
    finally:
        server.should_exit = True
        await serving


async def run_demo(quiet: bool = False) -> int:
    console = Console()
    token = secrets.token_hex(16)
    port = free_port()
    try:
        settings = load_settings(
            public_base_url=f"http://127.0.0.1:{port}",
            twilio_auth_token=token,
            twilio_validate=True,
            twilio_account_sid=None,
        )
    except Exception as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 2
    console.print(
        f"[bold]OrenGen voice agent demo[/] · pipeline [cyan]{settings.pipeline}[/] · "
        f"database {settings.database_url}"
    )
    with console.status("loading speech models and starting the server…"):
        try:
            server = running_server(settings)
            runtime = await server.__aenter__()
        except PipelineUnavailable as exc:
            print(f"voice-agent: {exc}", file=sys.stderr)
            return 2
    try:
        console.print(f"server listening on {settings.public_base_url}; placing a call…")
        result = await place_call(settings.public_base_url, demo_turns(), auth_token=token)
        await runtime.writes.flush(5.0)
        stored = await runtime.calls.get_call(result.call_sid)
    finally:
        await server.__aexit__(None, None, None)
    if result.error or stored is None:
        print(
            f"voice-agent: demo call failed: {result.error or 'call not stored'}", file=sys.stderr
        )
        return 1
    if not quiet:
        console.print(_turn_table(stored))
    _summary(console, result, stored)
    console.print(f"transcript: [bold]voice-agent transcript {result.call_sid} --json[/]")
    return 0


def _turn_table(call: StoredCall) -> Table:
    table = Table(title=f"call {call.call_sid} ({call.agent}, {call.pipeline})", expand=True)
    table.add_column("who", style="bold", no_wrap=True)
    table.add_column("said", ratio=3)
    table.add_column("reply ms", justify="right", no_wrap=True)
    table.add_column("stt · llm · tts", justify="right", no_wrap=True)
    table.add_column("server ms", justify="right", no_wrap=True)
    for turn in call.turns:
        who = {"caller": "[green]caller[/]", "agent": "[cyan]agent[/]"}.get(turn.role, turn.role)
        text = turn.text + (" [red](interrupted)[/]" if turn.interrupted else "")
        stages = ""
        if turn.total_ms is not None:
            stages = " · ".join(
                f"{v:.0f}" if v is not None else "-"
                for v in (turn.stt_ms, turn.llm_ms, turn.tts_first_byte_ms)
            )
        table.add_row(
            who,
            text,
            f"{turn.total_ms:.0f}" if turn.total_ms is not None else "",
            stages,
            f"{turn.server_ms:.1f}" if turn.server_ms is not None else "",
        )
    return table


def _summary(console: Console, result: CallResult, call: StoredCall) -> None:
    greeting = f"{result.greeting_ms:.0f} ms" if result.greeting_ms is not None else "none"
    clears = [t.clear_ms for t in result.turns if t.clear_ms is not None]
    server = sorted(t.server_ms for t in call.turns if t.server_ms is not None)
    console.print(f"greeting first audio: [bold]{greeting}[/] after the stream started")
    if clears:
        console.print(
            "barge-in: line cleared "
            + ", ".join(f"{c:.0f} ms" for c in clears)
            + " after the caller began"
        )
    if server:
        console.print(
            f"server's own share per turn: median {server[len(server) // 2]:.1f} ms, "
            f"max {server[-1]:.1f} ms over {len(server)} turns"
        )
    ended = "the agent hung up" if result.ended_by_server else "the caller hung up"
    console.print(f"call ended: {ended} ({call.end_reason or 'unknown'})")
