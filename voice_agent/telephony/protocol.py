"""Twilio Media Streams wire format: typed events in, JSON text frames out. No sockets.

Inbound frames (integrations.md §1.3) become small immutable dataclasses; anything that
cannot be one raises `MalformedMessage` with a human-readable reason, and events we do
not know (Twilio adds them over time) parse to ``None`` so callers can skip them.

Outbound frames (§1.4) are built as strings with exactly the documented fields: Twilio
logs warning 31951 for extra fields, so nothing else is ever added. `media` is sent many
times per second per call, so `Outbound` precomputes everything but the payload.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_SOCKET_MESSAGE_BYTES",
    "Connected",
    "Dtmf",
    "MalformedMessage",
    "Mark",
    "Media",
    "Outbound",
    "Start",
    "Stop",
    "TwilioEvent",
    "encode_clear",
    "encode_mark",
    "encode_media",
    "parse",
]

# Twilio's inbound frames are a few hundred bytes (20 ms of audio is 216 base64 chars);
# the cap bounds the work a hostile or broken peer can make us do per frame.
MAX_FRAME_BYTES = 64 * 1024

# The websocket layer's own cap (uvicorn's ws_max_size, default 16 MiB): a message above it
# closes the socket with 1009 before it is even buffered whole. Frames between the two caps
# are skipped and counted like any malformed frame, so the call goes on.
MAX_SOCKET_MESSAGE_BYTES = 1024 * 1024

# Counters are decimal strings; 19 digits fit in a signed 64-bit integer and keep int()
# far away from Python's int-from-str digit limit.
_MAX_COUNTER_DIGITS = 19


class MalformedMessage(ValueError):
    """A frame that is not a valid Media Streams message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    encoding: str
    sample_rate: int
    channels: int
    sequence: int


@dataclass(slots=True)
class Media:
    payload: bytes  # raw mu-law, base64 already decoded
    timestamp_ms: int
    chunk: int
    sequence: int
    track: str


@dataclass(slots=True)
class Dtmf:
    digit: str
    sequence: int


@dataclass(slots=True)
class Mark:
    name: str
    sequence: int


@dataclass(slots=True)
class Stop:
    call_sid: str
    account_sid: str
    sequence: int


# The event classes are values: treat them as read-only. They are not declared frozen
# because a frozen dataclass costs about four times as much to build, and one `Media` is
# built per 20 ms frame per call.
TwilioEvent = Connected | Start | Media | Dtmf | Mark | Stop


# --- parsing ---------------------------------------------------------------------------


def _object(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    if type(value) is not dict:
        raise MalformedMessage(f"'{key}' must be a JSON object")
    return value


def _string(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if type(value) is not str:
        raise MalformedMessage(f"'{where}{key}' must be a string")
    return value


def _counter(container: dict[str, Any], key: str, where: str) -> int:
    """A non-negative integer that Twilio sends as a JSON string (or, leniently, a number)."""
    value = container.get(key)
    if type(value) is str:
        if 0 < len(value) <= _MAX_COUNTER_DIGITS and value.isascii() and value.isdigit():
            return int(value)
    elif type(value) is int and value >= 0:
        return value
    raise MalformedMessage(f"'{where}{key}' must be a non-negative integer")


def _parse_connected(msg: dict[str, Any]) -> Connected:
    return Connected(
        protocol=_string(msg, "protocol", ""),
        version=_string(msg, "version", ""),
    )


def _parse_start(msg: dict[str, Any]) -> Start:
    start = _object(msg, "start")
    sequence = _counter(msg, "sequenceNumber", "")
    stream_sid = start.get("streamSid")
    if stream_sid is None:
        stream_sid = msg.get("streamSid")
    if type(stream_sid) is not str or not stream_sid:
        raise MalformedMessage("'streamSid' must be a non-empty string (top level or in start)")

    tracks = start.get("tracks", ())
    if type(tracks) is not list or not all(type(t) is str for t in tracks):
        raise MalformedMessage("'start.tracks' must be an array of strings")

    # Absent when the TwiML has no <Parameter>; treat that as "no parameters".
    params = start.get("customParameters", {})
    if type(params) is not dict or not all(type(v) is str for v in params.values()):
        raise MalformedMessage("'start.customParameters' must map strings to strings")

    media_format = _object(start, "mediaFormat")
    return Start(
        stream_sid=stream_sid,
        call_sid=_string(start, "callSid", "start."),
        account_sid=_string(start, "accountSid", "start."),
        tracks=tuple(tracks),
        custom_parameters=params,
        encoding=_string(media_format, "encoding", "start.mediaFormat."),
        sample_rate=_counter(media_format, "sampleRate", "start.mediaFormat."),
        channels=_counter(media_format, "channels", "start.mediaFormat."),
        sequence=sequence,
    )


def _parse_media(msg: dict[str, Any]) -> Media:
    media = msg.get("media")
    if type(media) is not dict:
        raise MalformedMessage("'media' must be a JSON object")
    encoded = media.get("payload")
    if type(encoded) is not str:
        raise MalformedMessage("'media.payload' must be a string")
    try:
        payload = binascii.a2b_base64(encoded, strict_mode=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII str
        raise MalformedMessage(f"'media.payload' is not valid base64: {exc}") from None
    return Media(
        payload=payload,
        timestamp_ms=_counter(media, "timestamp", "media."),
        chunk=_counter(media, "chunk", "media."),
        sequence=_counter(msg, "sequenceNumber", ""),
        track=_string(media, "track", "media."),
    )


# One key of the keypad; anything else would reach the agent's prompt as "[DTMF ...]".
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def _parse_dtmf(msg: dict[str, Any]) -> Dtmf:
    dtmf = _object(msg, "dtmf")
    digit = _string(dtmf, "digit", "dtmf.")
    if digit not in _DTMF_DIGITS:
        raise MalformedMessage("'dtmf.digit' must be one keypad key (0-9, *, #, A-D)")
    return Dtmf(
        digit=digit,
        sequence=_counter(msg, "sequenceNumber", ""),
    )


def _parse_mark(msg: dict[str, Any]) -> Mark:
    mark = _object(msg, "mark")
    return Mark(
        name=_string(mark, "name", "mark."),
        sequence=_counter(msg, "sequenceNumber", ""),
    )


def _parse_stop(msg: dict[str, Any]) -> Stop:
    stop = _object(msg, "stop")
    return Stop(
        call_sid=_string(stop, "callSid", "stop."),
        account_sid=_string(stop, "accountSid", "stop."),
        sequence=_counter(msg, "sequenceNumber", ""),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], TwilioEvent]] = {
    "media": _parse_media,  # first: by far the most frequent
    "mark": _parse_mark,
    "start": _parse_start,
    "connected": _parse_connected,
    "dtmf": _parse_dtmf,
    "stop": _parse_stop,
}


def _too_big(frame: str | bytes) -> bool:
    if len(frame) > MAX_FRAME_BYTES:
        return True
    # A str of N characters is up to 4N UTF-8 bytes; only encode when that could matter.
    if isinstance(frame, str) and len(frame) > MAX_FRAME_BYTES // 4:
        return len(frame.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
    return False


def parse(frame: str | bytes) -> TwilioEvent | None:
    """Decode one websocket frame from Twilio.

    Returns ``None`` for a well-formed message with an ``event`` we do not know.
    Raises `MalformedMessage` for everything else that is not a valid message.
    """
    if not isinstance(frame, str | bytes | bytearray | memoryview):
        raise MalformedMessage(f"frame must be text or bytes, not {type(frame).__name__}")
    if _too_big(frame):
        raise MalformedMessage(f"frame larger than {MAX_FRAME_BYTES} bytes")
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if type(msg) is not dict:
        raise MalformedMessage("not a JSON object")
    event = msg.get("event")
    if type(event) is not str:
        raise MalformedMessage("'event' must be a string")
    parser = _PARSERS.get(event)
    if parser is None:
        return None
    return parser(msg)


# --- encoding --------------------------------------------------------------------------


def _json_string(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return orjson.dumps(value).decode()


class Outbound:
    """Encoder bound to one stream: every frame we may send on it (§1.4), as JSON text."""

    __slots__ = ("_clear", "_mark_prefix", "_media_prefix", "stream_sid")

    def __init__(self, stream_sid: str) -> None:
        sid = _json_string(stream_sid)
        self.stream_sid = stream_sid
        self._media_prefix = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._mark_prefix = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":'
        self._clear = '{"event":"clear","streamSid":' + sid + "}"

    def media(self, ulaw: bytes | bytearray | memoryview) -> str:
        """Raw mu-law bytes (no container header) to a `media` frame."""
        # Base64 needs no JSON escaping, so plain concatenation is exact.
        return self._media_prefix + binascii.b2a_base64(ulaw, newline=False).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        return self._mark_prefix + _json_string(name) + "}}"

    def clear(self) -> str:
        return self._clear


def encode_media(stream_sid: str, ulaw: bytes | bytearray | memoryview) -> str:
    return Outbound(stream_sid).media(ulaw)


def encode_mark(stream_sid: str, name: str) -> str:
    return Outbound(stream_sid).mark(name)


def encode_clear(stream_sid: str) -> str:
    return Outbound(stream_sid).clear()
