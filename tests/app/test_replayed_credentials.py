"""Replayed Twilio credentials: the same signed voice webhook (same signature, same CallSid)
posted again cannot put a second stream on the call, and a per-call token works once."""

from __future__ import annotations

from tests.app.conftest import Served
from tests.app.twilio_side import (
    new_call_sid,
    open_stream,
    post_voice,
    sign,
    stream_from_twiml,
    until,
    voice_params,
)

POLICY_VIOLATION = 1008


async def test_a_replayed_voice_webhook_cannot_start_a_second_stream(served: Served) -> None:
    call_sid = new_call_sid()
    params = voice_params(call_sid)
    signature = sign(served.settings.public_base_url + "/twilio/voice", params)
    first = await post_voice(served.settings, params, signature=signature)
    assert first.status_code == 200
    stream = await open_stream(served.settings, call_sid)
    await stream.start(stream_from_twiml(first.text)[1]["token"])
    await until(lambda: len(stream.agent_audio) > 0, what="the greeting on the real stream")

    # The captured request, byte for byte: the signature still checks out, so a token is
    # minted, but the stream it would open is refused while the call has one.
    replayed = await post_voice(served.settings, params, signature=signature)
    assert replayed.status_code == 200
    second_token = stream_from_twiml(replayed.text)[1]["token"]
    intruder = await open_stream(served.settings, call_sid)
    await intruder.start(second_token)
    await until(intruder.closed.is_set, what="the second stream to be refused")
    assert intruder.close_code == POLICY_VIOLATION
    assert not intruder.agent_audio
    assert not stream.closed.is_set()

    # The refused start spent the token: it cannot be tried again later either.
    later = await open_stream(served.settings, call_sid)
    await later.start(second_token)
    await until(later.closed.is_set, what="the spent token to be refused")
    assert later.close_code == POLICY_VIOLATION

    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.end_reason == "caller-hangup"
    assert [t.text for t in stored.turns if t.role == "agent"][:1]  # the greeting, once
