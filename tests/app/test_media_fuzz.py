"""A whole call fed random frames over a real Media Stream: never an unhandled exception,
the call goes on where it can, and it is stored with its end reason whatever came in.

The parser has its own fuzz tests (tests/telephony/test_protocol.py); here the frames go
through the server's websocket layer, the endpoint and a live CallSession on the cascade
pipeline, so a frame the parser lets through but the session chokes on shows up too.
The parser is the oracle for what each frame should do: skipped and counted when it is
malformed, a `stop` ends the call, a second `start` is ignored, anything else is taken.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.app.conftest import Served
from tests.app.twilio_side import (
    ACCOUNT_SID,
    issue_token,
    new_call_sid,
    open_stream,
    until,
)
from voice_agent.telephony.protocol import (
    MAX_SOCKET_MESSAGE_BYTES,
    MalformedMessage,
    Start,
    Stop,
    parse,
)

MALFORMED_METRIC = "voice_agent_malformed_frames_total"

# --- frames -----------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
_counters = st.one_of(
    st.integers(min_value=0, max_value=2**63).map(str),
    st.integers(min_value=-5, max_value=2**64),
    _json_values,
)
_events = st.sampled_from(["media", "mark", "dtmf", "start", "stop", "connected", "clear", ""])
_payloads = st.one_of(
    st.binary(max_size=480).map(lambda b: base64.b64encode(b).decode()),  # odd sizes too
    st.text(max_size=50),  # not base64
    st.integers(min_value=1, max_value=400_000).map(lambda n: "/w==" * (n // 4)),  # huge
    _json_values,
)


@st.composite
def _media(draw: st.DrawFn) -> dict[str, Any]:
    """A media frame with any sequence number (duplicates, gaps, going backwards)."""
    return {
        "event": "media",
        "sequenceNumber": draw(_counters),
        "streamSid": draw(st.text(max_size=34)),
        "media": {
            "track": draw(st.sampled_from(["inbound", "outbound", ""]) | _json_values),
            "chunk": draw(_counters),
            "timestamp": draw(_counters),
            "payload": draw(_payloads),
        },
    }


@st.composite
def _shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A frame shaped like Twilio's, with any event name and wrongly typed parts."""
    event = draw(_events | st.text(max_size=12))
    body = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=40) | _json_values,
                "digit": st.text(max_size=4) | _json_values,
                "callSid": st.text(max_size=34) | _json_values,
                "accountSid": st.just(ACCOUNT_SID) | _json_values,
                "streamSid": st.text(max_size=34),
                "customParameters": st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
                "mediaFormat": st.just(
                    {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
                )
                | _json_values,
            },
        )
    )
    return {
        "event": event,
        "sequenceNumber": draw(_counters),
        "streamSid": draw(st.text(max_size=34)),
        event or "x": body if draw(st.booleans()) else draw(_json_values),
    }


def _encoded(message: Any) -> str:
    # The standard library's encoder: orjson refuses integers beyond 64 bits.
    return json.dumps(message, ensure_ascii=False)


_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200)
_frames = st.one_of(
    _media().map(_encoded),
    _shaped().map(_encoded),
    _json_values.map(_encoded),
    _text,  # not JSON at all
    st.binary(max_size=200),  # binary frames
    _shaped().map(lambda m: _encoded(m).encode()),  # valid JSON, but as a binary frame
    st.integers(min_value=60_000, max_value=MAX_SOCKET_MESSAGE_BYTES + 4096).map(
        lambda n: '{"event":"media","media":{"payload":"' + "A" * n + '"}}'  # over the caps
    ),
)


def _short(frame: str | bytes) -> str:
    text = repr(frame)
    return text if len(text) < 300 else f"{text[:200]}... ({_size(frame)} bytes)"


def _size(frame: str | bytes) -> int:
    return len(frame.encode()) if isinstance(frame, str) else len(frame)


def _outcome(frame: str | bytes) -> str:
    """What the endpoint should do with a frame: the parser decides."""
    if _size(frame) > MAX_SOCKET_MESSAGE_BYTES:
        return "too-big"
    try:
        event = parse(frame)
    except MalformedMessage:
        return "malformed"
    if isinstance(event, Stop):
        return "stop"
    if isinstance(event, Start):
        return "start"
    return "taken"


class _Errors(logging.Handler):
    """Every ERROR record the server logs (unhandled exceptions in tasks and in the ASGI
    app are logged at ERROR by asyncio and uvicorn)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --- the test ---------------------------------------------------------------------------

figures = {"examples": 0, "frames": 0}


@settings(
    max_examples=40,
    deadline=None,
    # No shrinking: a call per example makes it take minutes. The failing frames are
    # printed whole, and the printed seed replays them.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.lists(_frames, max_size=4),
    during=st.lists(_frames, min_size=1, max_size=12),
)
async def test_random_frames_never_break_a_call(
    served: Served, before: list[str | bytes], during: list[str | bytes]
) -> None:
    for label, frames in (("before", before), ("during", during)):
        note(f"{label}: {[_short(f) for f in frames]}")
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        await _one_call(served, before, during)
    finally:
        logging.getLogger().removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]
    figures["examples"] += 1
    figures["frames"] += len(before) + len(during)


async def _one_call(served: Served, before: list[str | bytes], during: list[str | bytes]) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    stream = await open_stream(served.settings, call_sid)
    malformed_before = served.metric(MALFORMED_METRIC)
    expected_malformed = 0
    ended = ""  # how the junk ended the call, if it did
    try:
        # Before `start`: media and junk are skipped; a start or stop among them would be
        # a real one (with no token: refused), so those are left for the run below.
        for frame in before:
            outcome = _outcome(frame)
            if outcome in ("start", "stop", "too-big"):
                continue
            expected_malformed += outcome == "malformed"
            await stream.ws.send(frame)
        await stream.start(token)
        await until(lambda: call_sid in served.runtime.live_calls, what="the call to start")
        for frame in during:
            outcome = _outcome(frame)
            try:
                await stream.ws.send(frame)
            except ConnectionClosed:
                break
            if outcome == "malformed":
                expected_malformed += 1
            elif outcome in ("stop", "too-big"):
                ended = outcome
                break
        if ended == "too-big":
            # uvicorn drops the frames it read in the same chunk as the oversized one (it
            # closes on the parser's error before handling them): at most this many.
            await until(stream.closed.is_set, what="the socket to close on the big frame")
            await until(lambda: call_sid not in served.runtime.live_calls, what="the end")
            assert served.metric(MALFORMED_METRIC) - malformed_before <= expected_malformed
        else:
            await until(
                lambda: served.metric(MALFORMED_METRIC) - malformed_before >= expected_malformed,
                what=f"{expected_malformed} malformed frames counted",
            )
            assert served.metric(MALFORMED_METRIC) - malformed_before == expected_malformed
        if not ended:
            assert not stream.closed.is_set(), "junk ended the call"
            assert call_sid in served.runtime.live_calls
            await stream.stop()
        await until(stream.closed.is_set, what="the call to end")
    finally:
        await stream.aclose()
    if ended == "too-big":
        assert stream.close_code == 1009  # "message too big", from the websocket layer
    else:
        assert stream.close_code == 1000
    await until(lambda: call_sid not in served.runtime.live_calls, what="the session to end")
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None
    assert stored.end_reason == ("stream-closed" if ended == "too-big" else "caller-hangup")


async def test_a_message_over_the_socket_cap_ends_the_call_with_1009_and_a_log_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    call_sid = new_call_sid()
    token = await issue_token(served.settings, call_sid)
    stream = await open_stream(served.settings, call_sid)
    await stream.start(token)
    await until(lambda: call_sid in served.runtime.live_calls, what="the call to start")
    with caplog.at_level(logging.WARNING, "voice_agent.telephony.media_socket"):
        await stream.ws.send(b"{" * (MAX_SOCKET_MESSAGE_BYTES + 1))
        await until(stream.closed.is_set, what="the socket to close")
        await until(lambda: call_sid not in served.runtime.live_calls, what="the session to end")
    await stream.aclose()
    assert stream.close_code == 1009
    assert f"a message over {MAX_SOCKET_MESSAGE_BYTES} bytes" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await served.runtime.writes.flush(5.0)
    stored = await served.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.end_reason == "stream-closed"
