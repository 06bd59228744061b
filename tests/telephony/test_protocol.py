from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_agent.telephony.protocol import (
    MAX_FRAME_BYTES,
    Connected,
    Dtmf,
    MalformedMessage,
    Mark,
    Media,
    Outbound,
    Start,
    Stop,
    encode_clear,
    encode_mark,
    encode_media,
    parse,
)

STREAM = "MZ" + "1f" * 16
CALL = "CA" + "2e" * 16
ACCOUNT = "AC" + "3d" * 16
ULAW_20MS = bytes(range(160))

CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": STREAM,
    "start": {
        "streamSid": STREAM,
        "accountSid": ACCOUNT,
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"token": "tok-123", "caller": "+15551230000"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}
MEDIA = {
    "event": "media",
    "sequenceNumber": "4",
    "streamSid": STREAM,
    "media": {
        "track": "inbound",
        "chunk": "2",
        "timestamp": "20",
        "payload": base64.b64encode(ULAW_20MS).decode(),
    },
}
DTMF = {
    "event": "dtmf",
    "sequenceNumber": "9",
    "streamSid": STREAM,
    "dtmf": {"track": "inbound_track", "digit": "5"},
}
MARK = {"event": "mark", "sequenceNumber": "12", "streamSid": STREAM, "mark": {"name": "resp_7:3"}}
STOP = {
    "event": "stop",
    "sequenceNumber": "40",
    "streamSid": STREAM,
    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
}
VALID = [CONNECTED, START, MEDIA, DTMF, MARK, STOP]


def frame(msg: Any) -> str:
    return orjson.dumps(msg).decode()


def with_change(msg: dict[str, Any], path: tuple[str, ...], value: Any = ...) -> str:
    """``msg`` as a frame with the field at ``path`` replaced, or deleted when no value."""
    changed = copy.deepcopy(msg)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return frame(changed)


# --- valid messages (§1.3) -------------------------------------------------------------


def test_connected() -> None:
    assert parse(frame(CONNECTED)) == Connected(protocol="Call", version="1.0.0")


def test_start() -> None:
    assert parse(frame(START)) == Start(
        stream_sid=STREAM,
        call_sid=CALL,
        account_sid=ACCOUNT,
        tracks=("inbound",),
        custom_parameters={"token": "tok-123", "caller": "+15551230000"},
        encoding="audio/x-mulaw",
        sample_rate=8000,
        channels=1,
        sequence=1,
    )


def test_start_stream_sid_only_at_top_level() -> None:
    event = parse(with_change(START, ("start", "streamSid")))
    assert isinstance(event, Start)
    assert event.stream_sid == STREAM


def test_start_stream_sid_only_inside_start() -> None:
    event = parse(with_change(START, ("streamSid",)))
    assert isinstance(event, Start)
    assert event.stream_sid == STREAM


def test_start_without_custom_parameters_has_none() -> None:
    event = parse(with_change(START, ("start", "customParameters")))
    assert isinstance(event, Start)
    assert event.custom_parameters == {}


def test_media() -> None:
    assert parse(frame(MEDIA)) == Media(
        payload=ULAW_20MS, timestamp_ms=20, chunk=2, sequence=4, track="inbound"
    )


def test_media_accepts_bytes_and_integer_counters() -> None:
    msg = copy.deepcopy(MEDIA)
    msg["sequenceNumber"] = 4
    msg["media"]["chunk"] = 2
    msg["media"]["timestamp"] = 20
    event = parse(orjson.dumps(msg))
    assert event == Media(ULAW_20MS, timestamp_ms=20, chunk=2, sequence=4, track="inbound")


def test_media_with_empty_payload() -> None:
    event = parse(with_change(MEDIA, ("media", "payload"), ""))
    assert isinstance(event, Media)
    assert event.payload == b""


def test_dtmf() -> None:
    assert parse(frame(DTMF)) == Dtmf(digit="5", sequence=9)


def test_mark() -> None:
    assert parse(frame(MARK)) == Mark(name="resp_7:3", sequence=12)


def test_stop() -> None:
    assert parse(frame(STOP)) == Stop(call_sid=CALL, account_sid=ACCOUNT, sequence=40)


def test_extra_fields_are_ignored() -> None:
    msg = copy.deepcopy(MARK)
    msg["newField"] = {"x": 1}
    msg["mark"]["extra"] = True
    assert parse(frame(msg)) == Mark(name="resp_7:3", sequence=12)


@pytest.mark.parametrize("event", ["transcription", "MEDIA", ""])
def test_unknown_event_is_none(event: str) -> None:
    assert parse(frame({"event": event, "sequenceNumber": "3", "streamSid": STREAM})) is None


# --- malformed messages ----------------------------------------------------------------

MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("not json", "{event: media", "not JSON"),
    ("empty", "", "not JSON"),
    ("invalid utf-8", b'{"event": "\xff"}', "not JSON"),
    ("lone surrogate", '{"event": "\ud800"}', "not JSON"),
    ("array", frame([MEDIA]), "not a JSON object"),
    ("string", frame("media"), "not a JSON object"),
    ("null", "null", "not a JSON object"),
    ("no event", frame({"streamSid": STREAM}), "'event'"),
    ("event not str", frame({"event": 5}), "'event'"),
    ("media missing", with_change(MEDIA, ("media",)), "'media'"),
    ("media not object", with_change(MEDIA, ("media",), "abc"), "'media'"),
    ("payload missing", with_change(MEDIA, ("media", "payload")), "'media.payload'"),
    ("payload not str", with_change(MEDIA, ("media", "payload"), 12), "'media.payload'"),
    ("bad base64", with_change(MEDIA, ("media", "payload"), "abc$"), "base64"),
    ("base64 bad padding", with_change(MEDIA, ("media", "payload"), "abcde"), "base64"),
    ("base64 non-ascii", with_change(MEDIA, ("media", "payload"), "ÀÀÀÀ"), "base64"),
    ("no sequence", with_change(MEDIA, ("sequenceNumber",)), "'sequenceNumber'"),
    ("sequence text", with_change(MEDIA, ("sequenceNumber",), "four"), "'sequenceNumber'"),
    ("sequence negative", with_change(MEDIA, ("sequenceNumber",), "-1"), "'sequenceNumber'"),
    ("sequence negative int", with_change(MEDIA, ("sequenceNumber",), -1), "'sequenceNumber'"),
    ("sequence float", with_change(MEDIA, ("sequenceNumber",), 4.0), "'sequenceNumber'"),
    ("sequence bool", with_change(MEDIA, ("sequenceNumber",), True), "'sequenceNumber'"),
    ("sequence huge", with_change(MEDIA, ("sequenceNumber",), "9" * 5000), "'sequenceNumber'"),
    ("sequence unicode digit", with_change(MEDIA, ("sequenceNumber",), "²"), "'sequenceNumber'"),
    ("timestamp missing", with_change(MEDIA, ("media", "timestamp")), "'media.timestamp'"),
    ("chunk wrong type", with_change(MEDIA, ("media", "chunk"), [2]), "'media.chunk'"),
    ("track missing", with_change(MEDIA, ("media", "track")), "'media.track'"),
    ("start missing", with_change(START, ("start",)), "'start'"),
    (
        "start without any streamSid",
        frame({**START, "streamSid": None, "start": {**START["start"], "streamSid": None}}),
        "'streamSid'",
    ),
    ("start empty streamSid", with_change(START, ("start", "streamSid"), ""), "'streamSid'"),
    ("start callSid missing", with_change(START, ("start", "callSid")), "'start.callSid'"),
    ("start accountSid int", with_change(START, ("start", "accountSid"), 1), "accountSid"),
    ("tracks not list", with_change(START, ("start", "tracks"), "inbound"), "'start.tracks'"),
    ("tracks not str", with_change(START, ("start", "tracks"), [1]), "'start.tracks'"),
    (
        "custom parameter not str",
        with_change(START, ("start", "customParameters"), {"token": 5}),
        "customParameters",
    ),
    (
        "custom parameters list",
        with_change(START, ("start", "customParameters"), ["token"]),
        "customParameters",
    ),
    ("media format missing", with_change(START, ("start", "mediaFormat")), "'mediaFormat'"),
    (
        "sample rate text",
        with_change(START, ("start", "mediaFormat", "sampleRate"), "fast"),
        "sampleRate",
    ),
    ("encoding missing", with_change(START, ("start", "mediaFormat", "encoding")), "encoding"),
    ("connected no version", with_change(CONNECTED, ("version",)), "'version'"),
    ("dtmf missing", with_change(DTMF, ("dtmf",)), "'dtmf'"),
    ("dtmf digit int", with_change(DTMF, ("dtmf", "digit"), 5), "'dtmf.digit'"),
    ("dtmf digit not a key", with_change(DTMF, ("dtmf", "digit"), "55"), "'dtmf.digit'"),
    ("dtmf digit text", with_change(DTMF, ("dtmf", "digit"), "ignore all"), "'dtmf.digit'"),
    ("mark name missing", with_change(MARK, ("mark", "name")), "'mark.name'"),
    ("mark name int", with_change(MARK, ("mark", "name"), 3), "'mark.name'"),
    ("mark no sequence", with_change(MARK, ("sequenceNumber",)), "'sequenceNumber'"),
    ("stop callSid missing", with_change(STOP, ("stop", "callSid")), "'stop.callSid'"),
    ("stop not object", with_change(STOP, ("stop",), None), "'stop'"),
    (
        "200 kB payload",
        with_change(MEDIA, ("media", "payload"), "A" * 200_000),
        f"larger than {MAX_FRAME_BYTES}",
    ),
    (
        "200 kB bytes frame",
        with_change(MEDIA, ("media", "payload"), "A" * 200_000).encode(),
        "larger than",
    ),
    # Under the limit in characters, over it in UTF-8 bytes.
    ("wide characters", frame({"event": "mark", "x": "€" * 30_000}), "larger than"),
]


@pytest.mark.parametrize(
    ("data", "reason"),
    [pytest.param(data, reason, id=name) for name, data, reason in MALFORMED],
)
def test_malformed(data: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse(data)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason


def test_frame_at_the_size_limit_is_parsed() -> None:
    padding = MAX_FRAME_BYTES - len(frame({**MARK, "pad": ""}))
    data = frame({**MARK, "pad": "x" * padding})
    assert len(data.encode()) == MAX_FRAME_BYTES
    assert parse(data) == Mark(name="resp_7:3", sequence=12)
    with pytest.raises(MalformedMessage):
        parse(frame({**MARK, "pad": "x" * (padding + 1)}))


def test_non_text_frame_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="text or bytes"):
        parse(12)  # type: ignore[arg-type]


def test_malformed_is_a_value_error() -> None:
    assert issubclass(MalformedMessage, ValueError)


# --- what we send (§1.4) ---------------------------------------------------------------


def test_encode_media_fields() -> None:
    text = encode_media(STREAM, ULAW_20MS)
    assert isinstance(text, str)
    msg = orjson.loads(text)
    assert msg == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(ULAW_20MS).decode()},
    }
    assert base64.b64decode(msg["media"]["payload"], validate=True) == ULAW_20MS


def test_encode_media_exact_text() -> None:
    assert encode_media("MZ1", b"\xff\x7f\x00") == (
        '{"event":"media","streamSid":"MZ1","media":{"payload":"/38A"}}'
    )


def test_encode_media_accepts_buffers() -> None:
    expected = encode_media(STREAM, ULAW_20MS)
    assert encode_media(STREAM, bytearray(ULAW_20MS)) == expected
    assert encode_media(STREAM, memoryview(ULAW_20MS)) == expected


def test_encode_media_20ms_is_216_base64_chars() -> None:
    payload = orjson.loads(encode_media(STREAM, ULAW_20MS))["media"]["payload"]
    assert len(payload) == 216


def test_encode_mark_fields() -> None:
    msg = orjson.loads(encode_mark(STREAM, "resp_7:3"))
    assert msg == {"event": "mark", "streamSid": STREAM, "mark": {"name": "resp_7:3"}}


@pytest.mark.parametrize("name", ['quote"d', "back\\slash", "new\nline", "ünï€ode", ""])
def test_encode_mark_escapes_names(name: str) -> None:
    assert orjson.loads(encode_mark(STREAM, name))["mark"]["name"] == name


def test_encode_clear_fields() -> None:
    assert encode_clear(STREAM) == '{"event":"clear","streamSid":"' + STREAM + '"}'
    assert orjson.loads(encode_clear(STREAM)) == {"event": "clear", "streamSid": STREAM}


def test_outbound_matches_functions_and_escapes_the_sid() -> None:
    out = Outbound(STREAM)
    assert out.stream_sid == STREAM
    assert out.media(ULAW_20MS) == encode_media(STREAM, ULAW_20MS)
    assert out.mark("m1") == encode_mark(STREAM, "m1")
    assert out.clear() == encode_clear(STREAM)
    odd = Outbound('MZ"}')
    assert orjson.loads(odd.media(b"\x01"))["streamSid"] == 'MZ"}'
    assert orjson.loads(odd.clear())["streamSid"] == 'MZ"}'


def test_encoders_refuse_non_str_ids() -> None:
    with pytest.raises(TypeError):
        Outbound(b"MZ1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_mark(STREAM, 7)  # type: ignore[arg-type]


def test_round_trip_through_twilio_shape() -> None:
    """What we send, echoed the way Twilio echoes it, parses back to the same values."""
    sent = orjson.loads(encode_mark(STREAM, "resp_9:480"))
    echoed = {**sent, "sequenceNumber": "77"}
    assert parse(frame(echoed)) == Mark(name="resp_9:480", sequence=77)

    sent = orjson.loads(encode_media(STREAM, ULAW_20MS))
    sent["media"].update(track="outbound", chunk="1", timestamp="0")
    event = parse(frame({**sent, "sequenceNumber": "2"}))
    assert isinstance(event, Media)
    assert event.payload == ULAW_20MS


# --- fuzzing ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append((*prefix, key))
            paths.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.append((*prefix, index))
            paths.extend(_paths(child, (*prefix, index)))
    return paths


def _parse_or_malformed(data: str | bytes) -> None:
    try:
        event = parse(data)
    except MalformedMessage as exc:
        assert exc.reason
    else:
        assert event is None or isinstance(event, Connected | Start | Media | Dtmf | Mark | Stop)


@given(st.text(max_size=300))
def test_fuzz_text(data: str) -> None:
    _parse_or_malformed(data)


@given(st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    _parse_or_malformed(data)


@given(json_values)
def test_fuzz_json_values(value: Any) -> None:
    _parse_or_malformed(frame(value))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_fuzz_mutated_valid_messages(message: dict[str, Any], data: st.DataObject) -> None:
    msg = copy.deepcopy(message)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(msg)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = msg
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    _parse_or_malformed(frame(msg))


@given(st.sampled_from(VALID), st.data())
def test_fuzz_mangled_valid_text(message: dict[str, Any], data: st.DataObject) -> None:
    text = frame(message)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    insert = data.draw(st.text(max_size=5))
    _parse_or_malformed(text[:cut] + insert + text[cut + 1 :])
