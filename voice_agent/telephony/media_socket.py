"""The Media Streams websocket: Twilio frames in, typed calls on a session; audio out."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voice_agent.telephony import twiml
from voice_agent.telephony.direct_frames import DIRECT_FRAMES, SetFrameSink
from voice_agent.telephony.protocol import (
    MAX_SOCKET_MESSAGE_BYTES,
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
from voice_agent.telephony.stream_claims import StreamClaims
from voice_agent.telephony.tokens import CallTokenStore

log = logging.getLogger(__name__)

#: Malformed frames logged in full per call; the rest are only counted.
_LOGGED_MALFORMED = 3
_POLICY_VIOLATION = 1008
_MESSAGE_TOO_BIG = 1009


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

    __slots__ = ("_closed", "_on_hangup", "_out", "_rest", "_ws", "call_sid")

    def __init__(
        self,
        websocket: WebSocket,
        stream_sid: str,
        call_sid: str,
        rest: TwilioRest | None,
        on_hangup: Callable[[str], Awaitable[None]] | None = None,
    ):
        self._ws = websocket
        #: Told before the socket closes on our side: the call is over on purpose.
        self._on_hangup = on_hangup
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
        if self._on_hangup is not None:
            try:
                await self._on_hangup(self.call_sid)
            except Exception:
                log.exception("call %s: end mark failed", self.call_sid)
        await _close_quietly(self._ws)

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
            log.error("call %s: transfer to %s failed: %s", self.call_sid, number, str(exc))
            await self.hangup()


async def _close_quietly(websocket: WebSocket) -> None:
    """Close our side, if the caller's is not already gone. A peer that vanished (the
    socket cut without a close) makes the close fail; that is the caller's fault, not an
    error of ours, and its traceback must not keep the call's objects alive."""
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await websocket.close()


class _CallFrames:
    """One call's inbound frames: media, marks and DTMF go to the session as they are parsed,
    from the receive loop or, once the call has started, straight from the server's protocol
    (`direct_frames`). `start` and `stop` are left to the receive loop."""

    __slots__ = ("_on_malformed", "_set_sink", "malformed", "session", "session_call_sid")

    def __init__(self, on_malformed: Callable[[], None] | None) -> None:
        self._on_malformed = on_malformed
        self._set_sink: SetFrameSink | None = None
        self.malformed = 0
        self.session: StreamHandler | None = None
        #: The CallSid whose stream claim the session holds.
        self.session_call_sid = ""

    def take(self, frame: str | bytes) -> Start | Stop | None:
        """Handle one frame; return it when it is a `start` or `stop` for the loop."""
        try:
            event = parse(frame)
        except MalformedMessage as exc:
            self.malformed += 1
            if self._on_malformed is not None:
                self._on_malformed()
            if self.malformed <= _LOGGED_MALFORMED:
                log.warning("media stream: skipped malformed frame: %s", exc.reason)
            return None
        session = self.session
        if isinstance(event, Media):
            if session is not None:
                session.on_audio(event.payload)
        elif isinstance(event, Mark):
            if session is not None:
                session.on_mark(event.name)
        elif isinstance(event, Dtmf):
            if session is not None:
                session.on_dtmf(event.digit)
        elif isinstance(event, Start | Stop):
            return event
        return None

    def go_direct(self, set_sink: SetFrameSink | None) -> None:
        """Take frames from the server's protocol through `set_sink`; None stops that."""
        if set_sink is not None:
            set_sink(self._sink)
        elif self._set_sink is not None:
            self._set_sink(None)
        self._set_sink = set_sink

    def _sink(self, frame: bytes) -> bool:
        if self.take(frame) is None:
            return True
        # A start or stop is the receive loop's, and so is all that follows it.
        self.go_direct(None)
        return False


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
        is_live: Callable[[str], bool] | None = None,
        on_hangup: Callable[[str], Awaitable[None]] | None = None,
        claims: StreamClaims | None = None,
        held_elsewhere: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._on_hangup = on_hangup
        self._held_elsewhere = held_elsewhere
        self._claims = claims
        self._path = path
        self._tokens = tokens
        self._validate = validate
        self._signature = signature
        self._rest = rest
        self._open_session = open_session
        self._on_malformed = on_malformed
        self._is_live = is_live

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
        frames = _CallFrames(self._on_malformed)
        reason = "stream-closed"
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    # The server may have closed the socket itself (1009: a message over
                    # the size cap): nothing may be sent on it after this, not even a close.
                    websocket.application_state = WebSocketState.DISCONNECTED
                    if message.get("code") == _MESSAGE_TOO_BIG:
                        log.warning(
                            "media stream: closed, a message over %d bytes came in",
                            MAX_SOCKET_MESSAGE_BYTES,
                        )
                    break
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                event = frames.take(frame)
                if isinstance(event, Start):
                    if frames.session is not None:
                        continue  # one start per stream; a second one is ignored
                    started_at = time.perf_counter()
                    session = await self._begin(websocket, event)
                    if session is None:
                        return
                    frames.session = session
                    frames.session_call_sid = event.call_sid
                    await session.start(started_at)
                    frames.go_direct(websocket.scope.get("extensions", {}).get(DIRECT_FRAMES))
                elif isinstance(event, Stop):
                    reason = "caller-hangup"
                    break
        finally:
            frames.go_direct(None)
            if frames.malformed > _LOGGED_MALFORMED:
                log.warning("media stream: %d malformed frames skipped in all", frames.malformed)
            if frames.session is not None:
                try:
                    await frames.session.end(reason)
                finally:
                    if self._claims is not None:
                        await self._claims.release(frames.session_call_sid)
            await _close_quietly(websocket)

    async def _begin(self, websocket: WebSocket, start: Start) -> StreamHandler | None:
        token = start.custom_parameters.get("token", "")
        data = await self._tokens.redeem(token) if token else None
        if data is None or data.get("call_sid", start.call_sid) != start.call_sid:
            log.warning(
                "media stream for call %s refused: missing, unknown or used token", start.call_sid
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return None
        if self._is_live is not None and self._is_live(start.call_sid):
            # A replayed voice webhook (same signature, same CallSid) mints a fresh token;
            # it still cannot put a second stream on a call that has one.
            log.warning(
                "media stream for call %s refused: the call already has one", start.call_sid
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return None
        # The same, across workers: the replay may reach another one than the call's.
        resumed = data.get("resume", "") != ""
        if (
            resumed
            and self._held_elsewhere is not None
            and await self._held_elsewhere(start.call_sid)
        ):
            # A resume takes the claim over, so it must not reach a call whose stream is
            # still up: that is a replayed /twilio/resume, not Twilio after a drop.
            log.warning(
                "media stream for call %s refused: resumed while its stream is up on"
                " another worker",
                start.call_sid,
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return None
        if self._claims is not None and not await self._claims.claim(
            start.call_sid, take_over=resumed
        ):
            log.warning(
                "media stream for call %s refused: another worker holds its stream",
                start.call_sid,
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return None
        line = TwilioLine(websocket, start.stream_sid, start.call_sid, self._rest, self._on_hangup)
        try:
            return await self._open_session(start, data, line)
        except BaseException:
            if self._claims is not None:
                await self._claims.release(start.call_sid)
            raise
