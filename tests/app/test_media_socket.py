"""WS /twilio/media: the upgrade must carry Twilio's signature and the start a fresh token
issued for that very call; anything else is refused before a session exists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from loadtest.fixtures import load_script
from tests.app.conftest import Served
from tests.app.twilio_side import (
    SILENCE_FRAME,
    issue_token,
    media_url,
    new_call_sid,
    open_stream,
    sign,
    signed_stream_headers,
    until,
)
from voice_agent.demo import running_server
from voice_agent.settings import Settings

POLICY_VIOLATION = 1008


async def refused_upgrade(settings: Settings, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(media_url(settings), additional_headers=headers):
            pass
    return refused.value.response.status_code


async def test_upgrade_without_signature_is_refused(served: Served) -> None:
    assert await refused_upgrade(served.settings, {}) == 403


async def test_upgrade_with_forged_signature_is_refused(served: Served) -> None:
    forged = signed_stream_headers(served.settings, token="not-the-auth-token")
    assert await refused_upgrade(served.settings, forged) == 403
    # Signed with the right key over the http:// URL: Twilio signs the wss:// one.
    http_url = served.settings.public_base_url + "/twilio/media"
    assert await refused_upgrade(served.settings, {"X-Twilio-Signature": sign(http_url, {})}) == 403


async def test_upgrade_refused_when_validation_has_no_auth_token(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings(twilio_auth_token=None)
    async with running_server(settings):
        assert await refused_upgrade(settings, signed_stream_headers(settings)) == 403


async def assert_refused_without_session(
    served: Served, call_sid: str, token: str | None, start_sid: str | None = None
) -> None:
    stream = await open_stream(served.settings, call_sid)
    await stream.start(token, call_sid=start_sid)
    await until(stream.closed.is_set, what="the server to close the stream")
    assert stream.close_code == POLICY_VIOLATION
    assert not stream.agent_audio
    assert await served.runtime.writes.flush(5.0)
    assert await served.runtime.calls.get_call(start_sid or call_sid) is None
    assert served.metric("voice_agent_active_calls") == 0


async def test_start_without_token_is_refused(served: Served) -> None:
    await assert_refused_without_session(served, new_call_sid(), None)


async def test_start_with_unknown_token_is_refused(served: Served) -> None:
    await assert_refused_without_session(served, new_call_sid(), "x" * 32)
    await assert_refused_without_session(served, new_call_sid(), "y" * 5000)


async def test_token_works_once(served: Served) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    first = await open_stream(served.settings, call_sid)
    await first.start(token)
    await until(lambda: len(first.agent_audio) > 0, what="greeting audio on the first stream")

    # A replay of the same start (captured token) on a second socket gets nothing.
    replay = await open_stream(served.settings, call_sid)
    await replay.start(token)
    await until(replay.closed.is_set, what="the replayed stream to be closed")
    assert replay.close_code == POLICY_VIOLATION
    assert not replay.agent_audio
    assert not first.closed.is_set()

    await first.stop()
    await until(first.closed.is_set, what="the first call to end")
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.end_reason == "caller-hangup"


async def test_token_of_another_call_is_refused(served: Served) -> None:
    call_a, call_b = new_call_sid(), new_call_sid()
    token_a = await issue_token(served.settings, call_a)
    await assert_refused_without_session(served, call_b, token_a, start_sid=call_b)
    assert await served.runtime.calls.get_call(call_a) is None


async def test_media_before_start_is_ignored(served: Served) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    stream = await open_stream(served.settings, call_sid)
    # Loud speech before any start: no session yet, so nothing may hear it or answer.
    speech = load_script()[0].audio
    await stream.send_audio(speech + SILENCE_FRAME * 40)
    assert not stream.agent_audio and not stream.closed.is_set()

    await stream.start(token)
    await until(
        lambda: served.metric("voice_agent_turns_total", role="agent") == 1,
        what="the greeting, heard",
    )
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None
    assert stored.end_reason == "caller-hangup"
    assert stored.turns and all(t.role != "caller" for t in stored.turns)


async def test_broken_start_is_skipped_and_a_second_start_ignored(served: Served) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    stream = await open_stream(served.settings, call_sid)
    broken = stream.start_message(token)
    del broken["start"]["mediaFormat"]  # type: ignore[attr-defined]
    await stream.send_json(broken)
    # The broken start redeemed nothing: the token still opens the call.
    await stream.start(token)
    await until(lambda: len(stream.agent_audio) > 0, what="greeting audio")
    assert served.metric("voice_agent_malformed_frames_total") == 1

    # A second start on a live stream (even with a fresh, valid token) opens nothing new.
    other_sid = new_call_sid()
    await stream.send_json(
        stream.start_message(await issue_token(served.settings, other_sid), call_sid=other_sid)
    )
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    assert stream.close_code == 1000
    assert await served.runtime.writes.flush(5.0)
    assert await served.runtime.calls.get_call(other_sid) is None
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.end_reason == "caller-hangup"
    assert served.metric("voice_agent_calls_total", reason="caller-hangup") == 1
