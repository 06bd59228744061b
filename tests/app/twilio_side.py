"""Twilio's side of the wire, by hand: signed webhooks and a raw Media Stream whose every
frame the test chooses (loadtest.caller plays only well-behaved calls)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import TWILIO_TOKEN
from voice_agent.settings import Settings

ACCOUNT_SID = "AC" + "1" * 32
SILENCE_FRAME = b"\xff" * 160


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def voice_params(call_sid: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+15551230000",
        "To": "+15557654321",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    } | extra


def status_params(call_sid: str, **extra: str) -> dict[str, str]:
    """A final status callback's form: an inbound call completed after 47 s."""
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "CallStatus": "completed",
        "CallDuration": "47",
        "From": "+15551230000",
        "To": "+15557654321",
        "Direction": "inbound",
    } | extra


def sign(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def media_url(settings: Settings) -> str:
    """Where the test connects (plain ws on loopback); Twilio signs the public wss URL."""
    return settings.public_base_url.replace("http://", "ws://") + "/twilio/media"


def signed_stream_headers(settings: Settings, token: str = TWILIO_TOKEN) -> dict[str, str]:
    public = settings.public_base_url.replace("http://", "wss://") + "/twilio/media"
    return {"X-Twilio-Signature": sign(public, {}, token)}


async def post_voice(
    settings: Settings,
    params: dict[str, str],
    *,
    signature: str | None = None,
    signed: bool = True,
) -> httpx.Response:
    """POST the voice webhook; signed over `params` unless a signature is given or signed=False."""
    url = settings.public_base_url + "/twilio/voice"
    headers: dict[str, str] = {}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    elif signed:
        headers["X-Twilio-Signature"] = sign(url, params)
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(url, data=params, headers=headers)


def stream_from_twiml(document: str) -> tuple[str, dict[str, str]]:
    stream = ET.fromstring(document).find("./Connect/Stream")
    assert stream is not None, document
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters


async def issue_token(settings: Settings, call_sid: str) -> str:
    """A real per-call token, the way Twilio gets one: from the signed voice webhook."""
    response = await post_voice(settings, voice_params(call_sid))
    assert response.status_code == 200, response.text
    return stream_from_twiml(response.text)[1]["token"]


@dataclass
class MediaStream:
    """One open Media Stream as Twilio drives it. Agent marks are echoed at once when
    `echo_marks` is on, as if playback were instant."""

    ws: ClientConnection
    call_sid: str
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    echo_marks: bool = True
    agent_audio: bytearray = field(default_factory=bytearray)
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: int = 0
    clears: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _sequence: int = 0
    _chunk: int = 0
    _receiver: asyncio.Task[None] | None = None

    def listen(self) -> None:
        self._receiver = asyncio.create_task(self._receive())

    async def aclose(self) -> None:
        await self.ws.close()
        if self._receiver is not None:
            await asyncio.gather(self._receiver, return_exceptions=True)

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def send_json(self, message: dict[str, object]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    def start_message(self, token: str | None, call_sid: str | None = None) -> dict[str, object]:
        parameters = {} if token is None else {"token": token}
        return {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": ACCOUNT_SID,
                "callSid": call_sid or self.call_sid,
                "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    async def start(self, token: str | None, call_sid: str | None = None) -> None:
        await self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send_json(self.start_message(token, call_sid))

    def media_message(self, payload: bytes) -> dict[str, object]:
        self._chunk += 1
        return {
            "event": "media",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str(self._chunk * 20),
                "payload": base64.b64encode(payload).decode(),
            },
        }

    async def send_audio(self, ulaw: bytes, *, frames_per_tick: int = 5) -> None:
        """Caller audio in 20 ms frames, faster than real time (endpointing counts frames),
        yielding now and then so the server interleaves its replies."""
        for index, offset in enumerate(range(0, len(ulaw), 160)):
            frame = ulaw[offset : offset + 160].ljust(160, b"\xff")
            await self.send_json(self.media_message(frame))
            if index % frames_per_tick == 0:
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.send_json(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
            }
        )

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                event = message.get("event")
                if event == "media":
                    self.agent_audio += base64.b64decode(message["media"]["payload"])
                elif event == "mark":
                    name = message["mark"]["name"]
                    self.marks_received.append(name)
                    if self.echo_marks:
                        self.marks_echoed += 1
                        await self.send_json(
                            {
                                "event": "mark",
                                "sequenceNumber": self._next_sequence(),
                                "streamSid": self.stream_sid,
                                "mark": {"name": name},
                            }
                        )
                elif event == "clear":
                    self.clears += 1
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()


async def open_stream(
    settings: Settings, call_sid: str, headers: dict[str, str] | None = None
) -> MediaStream:
    ws = await connect(
        media_url(settings),
        additional_headers=signed_stream_headers(settings) if headers is None else headers,
        max_size=2**22,
        compression=None,
    )
    stream = MediaStream(ws, call_sid)
    stream.listen()
    return stream


async def until(check: Callable[[], bool], within_s: float = 5.0, what: str = "") -> None:
    """Wait for a condition the server reaches asynchronously; fail with `what` if it never does."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what or check}")
        await asyncio.sleep(0.01)
