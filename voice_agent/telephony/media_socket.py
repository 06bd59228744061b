"""The Media Streams websocket: Twilio frames in, typed calls on a session; audio out."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketState

from voice_agent.telephony import twiml
from voice_agent.telephony.protocol import (
    Dtmf,
    MalformedMessage,
    Mark,
    Media,
    Outbound,
    Start,
    Stop,
    parse,
)
from voice_agent.telephony.rest import TwilioRest, TwilioRestError
from voice_agent.telephony.signature import TwilioSignature
from voice_agent.telephony.tokens import CallTokenStore

log = logging.getLogger(__name__)

#: Malformed frames logged in full per call; the rest are only counted.
_LOGGED_MALFORMED = 3
_POLICY_VIOLATION = 1008


class StreamHandler(Protocol):
    """What the endpoint drives for one call (a CallSession)."""

    def on_audio(self, ulaw: bytes) -> None: ...

    def on_mark(self, name: str) -> None: ...

    def on_dtmf(self, digit: str) -> None: ...

    async def start(self, started_at: float | None = None) -> None: ...

    async def end(self, reason: str | None = None) -> None: ...


class TwilioLine:
    """CallTransport over one Media Stream: media, mark and clear frames; hang-up and
    transfer through the socket or the REST API."""

    __slots__ = ("_closed", "_out", "_rest", "_ws", "call_sid")

    def __init__(
        self, websocket: WebSocket, stream_sid: str, call_sid: str, rest: TwilioRest | None
    ):
        self._ws = websocket
        self._out = Outbound(stream_sid)
        self._rest = rest
        self._closed = False
        self.call_sid = call_sid

    async def send_audio(self, ulaw: bytes) -> None:
        if not self._closed:
            await self._ws.send_text(self._out.media(ulaw))

    async def send_mark(self, name: str) -> None:
        if not self._closed:
            await self._ws.send_text(self._out.mark(name))

    async def send_clear(self) -> None:
        if not self._closed:
            await self._ws.send_text(self._out.clear())

    async def hangup(self) -> None:
        """Closing the socket ends <Connect>; with nothing after it, Twilio hangs up."""
        if self._closed:
            return
        self._closed = True
        if self._ws.application_state is WebSocketState.CONNECTED:
            await self._ws.close()

    async def transfer(self, number: str) -> None:
        if self._rest is None:
            log.error(
                "call %s: transfer to %s needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN;"
                " hanging up instead",
                self.call_sid,
                number,
            )
            await self.hangup()
            return
        try:
            await self._rest.update_twiml(self.call_sid, twiml.dial(number))
        except TwilioRestError as exc:
            log.error("call %s: transfer to %s failed: %s", self.call_sid, number, exc)
            await self.hangup()


SessionOpener = Callable[[Start, dict[str, str], TwilioLine], Awaitable[StreamHandler]]


class MediaStreamEndpoint:
    """One websocket per call. Checks the upgrade's signature and the per-call token before
    any audio reaches a session; skips (and counts) malformed frames without ending the call.
    """

    def __init__(
        self,
        *,
        path: str,
        tokens: CallTokenStore,
        validate: bool,
        signature: TwilioSignature | None,
        rest: TwilioRest | None,
        open_session: SessionOpener,
        on_malformed: Callable[[], None] | None = None,
    ) -> None:
        self._path = path
        self._tokens = tokens
        self._validate = validate
        self._signature = signature
        self._rest = rest
        self._open_session = open_session
        self._on_malformed = on_malformed

    async def handle(self, websocket: WebSocket) -> None:
        if self._validate and (
            self._signature is None
            or not self._signature.check_websocket(
                self._path, websocket.headers.get("x-twilio-signature")
            )
        ):
            log.warning(
                "media stream refused: bad or missing signature from %s",
                websocket.client.host if websocket.client else "?",
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return
        await websocket.accept()
        session: StreamHandler | None = None
        malformed = 0
        reason = "stream-closed"
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                try:
                    event = parse(frame)
                except MalformedMessage as exc:
                    malformed += 1
                    if self._on_malformed is not None:
                        self._on_malformed()
                    if malformed <= _LOGGED_MALFORMED:
                        log.warning("media stream: skipped malformed frame: %s", exc.reason)
                    continue
                if isinstance(event, Media):
                    if session is not None:
                        session.on_audio(event.payload)
                elif isinstance(event, Mark):
                    if session is not None:
                        session.on_mark(event.name)
                elif isinstance(event, Start):
                    if session is not None:
                        continue  # one start per stream; a second one is ignored
                    started_at = time.perf_counter()
                    session = await self._begin(websocket, event)
                    if session is None:
                        return
                    await session.start(started_at)
                elif isinstance(event, Dtmf):
                    if session is not None:
                        session.on_dtmf(event.digit)
                elif isinstance(event, Stop):
                    reason = "caller-hangup"
                    break
        finally:
            if malformed > _LOGGED_MALFORMED:
                log.warning("media stream: %d malformed frames skipped in all", malformed)
            if session is not None:
                await session.end(reason)
            if websocket.application_state is WebSocketState.CONNECTED:
                await websocket.close()

    async def _begin(self, websocket: WebSocket, start: Start) -> StreamHandler | None:
        token = start.custom_parameters.get("token", "")
        data = await self._tokens.redeem(token) if token else None
        if data is None or data.get("call_sid", start.call_sid) != start.call_sid:
            log.warning(
                "media stream for call %s refused: missing, unknown or used token", start.call_sid
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return None
        line = TwilioLine(websocket, start.stream_sid, start.call_sid, self._rest)
        return await self._open_session(start, data, line)
