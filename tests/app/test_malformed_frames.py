"""Junk on a live Media Stream is skipped and counted; the call carries on."""

from __future__ import annotations

import httpx
import orjson

from loadtest.fixtures import load_script
from tests.app.conftest import Served
from tests.app.twilio_side import SILENCE_FRAME, issue_token, new_call_sid, open_stream, until

MALFORMED_METRIC = "voice_agent_malformed_frames_total"


async def test_malformed_frames_are_skipped_and_the_call_goes_on(served: Served) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    stream = await open_stream(served.settings, call_sid)
    stream.echo_marks = False  # echoed by hand below, after the junk
    await stream.start(token)
    await until(lambda: len(stream.marks_received) > 0, what="greeting audio and its mark")

    sid = stream.stream_sid
    malformed: list[str | bytes] = [
        "this is not json",
        "[1, 2, 3]",
        '{"event": "media", "streamSid": "' + sid + '", "media": {"payload": "%%%not base64",'
        ' "timestamp": "20", "chunk": "1", "track": "inbound"}, "sequenceNumber": "9"}',
        '{"event": "mark", "streamSid": "' + sid + '", "sequenceNumber": "10"}',
        '{"event": "stop"}',  # missing fields: must not end the call
        # A well-formed media frame, but 200 kB: refused on size alone.
        orjson.dumps(stream.media_message(b"\xff" * 150_000)).decode(),
        b"\x00\x01\x02\xff binary",
    ]
    for frame in malformed:
        await stream.ws.send(frame)
    # Well-formed, but an event Twilio has not told us about: skipped, not malformed.
    await stream.send_json({"event": "some-future-event", "streamSid": sid})

    await until(
        lambda: served.metric(MALFORMED_METRIC) >= len(malformed), what="every frame counted"
    )
    assert served.metric(MALFORMED_METRIC) == len(malformed)
    assert not stream.closed.is_set()

    # Marks still reach the session: echoing them lets the greeting finish as heard,
    # which stores it as an agent turn at once (without marks it waits for a timeout).
    stream.echo_marks = True
    for name in stream.marks_received:
        await stream.send_json(
            {"event": "mark", "streamSid": sid, "sequenceNumber": "20", "mark": {"name": name}}
        )
    await until(
        lambda: served.metric("voice_agent_turns_total", role="agent") == 1,
        what="the greeting to be taken as heard",
    )

    # The caller is still heard and answered.
    await stream.send_audio(load_script()[0].audio + SILENCE_FRAME * 40)
    await until(
        lambda: served.metric("voice_agent_turns_total", role="agent") == 2,
        what="a reply to the caller",
    )
    assert served.metric("voice_agent_turns_total", role="caller") == 1

    # The counter is on /metrics for Prometheus too.
    async with httpx.AsyncClient() as http:
        page = (await http.get(served.settings.public_base_url + "/metrics")).text
    assert f"{MALFORMED_METRIC} {float(len(malformed))}" in page

    await stream.stop()
    await until(stream.closed.is_set, what="the call to end on stop")
    assert stream.close_code == 1000
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None
    assert stored.end_reason == "caller-hangup"
    assert stored.status == "completed"
    greeting = stored.turns[0]
    assert greeting.role == "agent" and not greeting.interrupted and greeting.text
