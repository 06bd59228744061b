"""The caller's side failing: media that stops arriving, a socket cut without `stop`, marks
never echoed, and a call that reaches its tenant's maximum length. Each session ends
within its set time, leaves no task behind, and the call is stored with its end reason."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

from loadtest.fixtures import load_script
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import (
    SILENCE_FRAME,
    MediaStream,
    issue_token,
    new_call_sid,
    open_stream,
    until,
)
from voice_agent.conversation.session import TIME_UP, TIME_WARNING
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.records import StoredCall


def _session_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if "CallSession" in getattr(task.get_coro(), "__qualname__", "")
    ]


async def _stored(runtime: Runtime, call_sid: str) -> StoredCall:
    await until(lambda: not runtime.live_calls, within_s=5.0, what="the call to leave")
    assert await runtime.writes.flush(5.0)
    stored = await runtime.calls.get_call(call_sid)
    assert stored is not None
    return stored


async def _begin(settings: Settings, echo_marks: bool = True) -> MediaStream:
    call_sid = new_call_sid()
    stream = await open_stream(settings, call_sid)
    stream.echo_marks = echo_marks
    await stream.start(await issue_token(settings, call_sid))
    await until(lambda: len(stream.agent_audio) > 0, what="the greeting")
    return stream


async def test_media_that_stops_arriving_ends_the_call(
    cascade_settings: Callable[..., Settings], standin: StandinOpenAI
) -> None:
    settings = cascade_settings(media_timeout_s=1.0)
    async with running_server(settings) as runtime:
        # The last message the caller sends is `start`, inside _begin: the server may end
        # the call no sooner than 1 s after it, and no later than 2.5 s after the greeting.
        before_start = time.monotonic()
        stream = await _begin(settings)
        greeted = time.monotonic()  # no media from here on, and no stop either
        await until(stream.closed.is_set, within_s=4.0, what="the server to hang up")
        hung_up = time.monotonic()
        stored = await _stored(runtime, stream.call_sid)
        assert not _session_tasks()
    assert hung_up - before_start >= 1.0, hung_up - before_start
    assert hung_up - greeted <= 2.5, hung_up - greeted
    assert stored.end_reason == "media-timeout"
    assert stored.ended_at is not None


async def test_a_socket_cut_mid_reply_without_stop_ends_and_stores_the_call(
    cascade_settings: Callable[..., Settings], standin: StandinOpenAI
) -> None:
    settings = cascade_settings()
    standin.add_script("I need help with a leaking roof")
    async with running_server(settings) as runtime:
        stream = await _begin(settings)
        heard = len(stream.agent_audio)
        await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
        await until(lambda: len(stream.agent_audio) > heard, what="the reply to start")
        stream.ws.transport.abort()  # the network goes: no stop, no close handshake
        cut = time.monotonic()
        await until(lambda: not runtime.live_calls, within_s=5.0, what="the session to end")
        took = time.monotonic() - cut
        stored = await _stored(runtime, stream.call_sid)
        assert not _session_tasks()
    assert took < 2.0, took
    assert stored.end_reason == "stream-closed"
    assert [t.role for t in stored.turns][:2] == ["agent", "caller"]


async def test_marks_never_echoed_do_not_hang_the_call(
    cascade_settings: Callable[..., Settings], standin: StandinOpenAI
) -> None:
    """A peer that never echoes marks: the greeting is taken as heard once its audio's
    length (plus a margin) has passed, the caller is answered, and the call ends on stop."""
    settings = cascade_settings()
    standin.add_script("I need help with a leaking roof")
    async with running_server(settings) as runtime:
        stream = await _begin(settings, echo_marks=False)
        await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
        await until(
            lambda: len(stream.agent_audio) > 8000 * 6, within_s=10.0, what="greeting and reply"
        )
        await stream.stop()
        stored = await _stored(runtime, stream.call_sid)
        assert not _session_tasks()
    # The reply came although the greeting's marks never did; the unconfirmed audio is
    # not claimed as heard.
    assert stream.marks_echoed == 0 and stream.marks_received
    assert stored.end_reason == "caller-hangup"
    assert [t.role for t in stored.turns] == ["caller"]


async def test_the_tenants_maximum_call_length_is_warned_of_then_enforced(
    cascade_settings: Callable[..., Settings], standin: StandinOpenAI
) -> None:
    settings = cascade_settings(max_call_s=3600, call_warning_s=2)
    async with running_server(settings) as runtime:
        tenant = await runtime.tenants.get(settings.default_tenant)
        await runtime.tenants.save(dataclasses.replace(tenant, max_call_s=3))
        await runtime.tenants.add_number(tenant.slug, "+15557654321")
        stream = await _begin(settings)
        started = time.monotonic()
        with contextlib.suppress(ConnectionClosed):
            while not stream.closed.is_set() and time.monotonic() - started < 10:
                await stream.send_audio(SILENCE_FRAME * 5)  # a quiet caller, media flowing
        await until(stream.closed.is_set, what="the hang-up")
        took = time.monotonic() - started
        stored = await _stored(runtime, stream.call_sid)
        assert not _session_tasks()
    # The server counts from the `start` it received, a moment before `started` here.
    assert 2.95 <= took <= 5.0, took
    assert stored.end_reason == "max-duration"
    agent = [t.text for t in stored.turns if t.role == "agent"]
    assert agent[1:] == [TIME_WARNING, TIME_UP]
