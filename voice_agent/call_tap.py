"""Taps on one call between the media socket and its session: both legs into the recording
and what the caller said into a transfer summary, without the session knowing.

The tap is three things at once: the StreamHandler the socket drives (caller audio in), the
CallTransport the session speaks through (agent audio out), and the SessionSink the session
reports to (call start = recording t=0, turns, call end = write the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from media.recording import BLOCK, RATE, CallRecording
from prompts import AgentDefinition
from voice_agent.conversation.ports import (
    CallEndedEvent,
    CallInfo,
    SessionSink,
    TurnEvent,
    UsageEvent,
)
from voice_agent.recordings import RecordingFile, RecordingStore
from voice_agent.telephony.media_socket import StreamHandler, TwilioLine
from voice_agent.telephony.warm_transfer import WarmTransfer

log = logging.getLogger(__name__)

_SUMMARY_TURNS = 2
MESSAGE_MARK = "message-end"
_CHUNK = 1280  # 160 ms of line audio per media message, as the speaker sends
_MESSAGE_MARGIN_S = 5.0
_SAID_CHARS = 160


def transfer_summary(call: CallInfo, agent: AgentDefinition, caller_said: list[str]) -> str:
    """One sentence for the person taking the call: who, and what they asked about."""
    name = " ".join(
        part for part in (call.variables.get("first_name"), call.variables.get("last_name")) if part
    )
    number = call.from_number if call.direction == "inbound" else call.to_number
    if name:
        who = name
    elif number:
        who = f"a caller from {number}"
    else:
        who = "a caller"
    said = " ".join(caller_said).strip()
    if len(said) > _SAID_CHARS:
        said = said[:_SAID_CHARS].rsplit(" ", 1)[0] + "…"
    if said:
        said = said.rstrip(".!?")
        end = "" if said.endswith("…") else "."
        return f"Transfer from {agent.name}: {who}, who said: {said}{end}"
    return f"Transfer from {agent.name}: {who}."


class CallTap:
    __slots__ = (
        "_agent",
        "_caller_said",
        "_clock",
        "_file",
        "_flush_at",
        "_lead",
        "_line",
        "_live",
        "_message_heard",
        "_muted",
        "_part",
        "_recordings",
        "_session",
        "_sink",
        "_started_at",
        "_t0",
        "_transfers",
        "call",
        "recording",
    )

    def __init__(
        self,
        *,
        call: CallInfo,
        agent: AgentDefinition,
        sink: SessionSink,
        line: TwilioLine,
        recordings: RecordingStore | None,
        transfers: WarmTransfer | None,
        live: dict[str, CallTap] | None = None,
        clock: Callable[[], float] = time.monotonic,
        part: int = 0,
    ) -> None:
        self.call = call
        self._agent = agent
        self._sink = sink
        self._line = line
        self._recordings = recordings
        self._transfers = transfers
        self._clock = clock
        self.recording = CallRecording() if recordings is not None else None
        self._session: StreamHandler | None = None
        self._t0: float | None = None
        self._started_at: datetime | None = None
        self._caller_said: deque[str] = deque(maxlen=_SUMMARY_TURNS)
        self._file: RecordingFile | None = None
        #: Caller sample count at which finished blocks are next handed to the writer.
        self._flush_at = BLOCK
        #: Calls streaming in this process by CallSid, for webhooks that act on them.
        self._live = live
        #: Set while a message (voicemail) owns the line: the session is not heard.
        self._muted = False
        self._message_heard: asyncio.Event | None = None
        #: The call's part (N after its N-th resume, see voice_agent.resume) and where this
        #: part's first sample falls on the call's timeline.
        self._part = part
        self._lead = 0

    def bind(self, session: StreamHandler) -> CallTap:
        self._session = session
        return self

    def _flush(self, recording: CallRecording) -> None:
        """Once per block (5 s), not per frame: hand finished blocks to the file writer."""
        self._flush_at = recording.caller_samples + BLOCK
        if self._recordings is not None and self._file is not None:
            self._recordings.flush_later(self._file, recording, self._sample_now())

    def _sample_now(self) -> int:
        return 0 if self._t0 is None else int((self._clock() - self._t0) * RATE)

    # --- StreamHandler: the socket's side -------------------------------------------------

    def on_audio(self, ulaw: bytes) -> None:
        recording = self.recording
        if recording is not None and self._t0 is not None:
            recording.caller(ulaw)
            if recording.caller_samples >= self._flush_at:
                self._flush(recording)
        assert self._session is not None
        self._session.on_audio(ulaw)

    def on_mark(self, name: str) -> None:
        if name == MESSAGE_MARK and self._message_heard is not None:
            self._message_heard.set()
            return
        assert self._session is not None
        self._session.on_mark(name)

    def on_dtmf(self, digit: str) -> None:
        assert self._session is not None
        self._session.on_dtmf(digit)

    def on_text(self, text: str) -> bool:
        """A text sent during the call, for the session to answer by voice; False when this
        session takes none (a suspension notice, a message being left, a call ending)."""
        take = getattr(self._session, "on_text", None)
        if take is None or self._muted:
            return False
        return bool(take(text))

    async def start(self, started_at: float | None = None) -> None:
        assert self._session is not None
        await self._session.start(started_at)

    async def end(self, reason: str | None = None) -> None:
        session = self._session
        assert session is not None
        try:
            await session.end(reason)
        finally:
            # The session holds this tap as its transport and sink: dropping it here frees
            # the call's objects (and audio buffers) as it ends, where the cycle would leave
            # them for a full collection, which stalls every call in the process.
            self._session = None

    async def say_goodbye(self, reason: str, text: str | None = None) -> None:
        """End the call from our side: the session's goodbye in the agent's voice, then the
        hang-up (a handler with no goodbye, such as the suspension notice, just hangs up)."""
        if self._muted:
            return  # a message being left hangs up by itself when it has played
        goodbye = getattr(self._session, "say_goodbye", None)
        if goodbye is not None:
            await goodbye(reason, text)
        else:
            await self._line.hangup()

    # --- CallTransport: the session's side ------------------------------------------------

    async def send_audio(self, ulaw: bytes) -> None:
        if self._muted:
            return
        if self.recording is not None:
            self.recording.agent(ulaw, self._sample_now())
        await self._line.send_audio(ulaw)

    async def send_mark(self, name: str) -> None:
        if not self._muted:
            await self._line.send_mark(name)

    async def send_clear(self) -> None:
        if self._muted:
            return
        if self.recording is not None:
            self.recording.clear(self._sample_now())
        await self._line.send_clear()

    async def hangup(self) -> None:
        if not self._muted:  # a message being left ends the call itself
            await self._line.hangup()

    async def transfer(self, number: str) -> None:
        if self._muted:
            return
        if self._transfers is None:
            await self._line.transfer(number)
            return
        summary = transfer_summary(self.call, self._agent, list(self._caller_said))
        if not await self._transfers.transfer(
            self.call.call_sid,
            number,
            summary,
            self._agent.slug,
            self.call.tenant,
            language=self._agent.language,
        ):
            await self._line.hangup()

    async def leave_message(self, ulaw: bytes) -> None:
        """Take the line from the session, play ``ulaw`` from now, and hang up once it has
        played (a voicemail after the beep, in the agent's own voice)."""
        self._muted = True
        self._message_heard = asyncio.Event()
        if self.recording is not None:
            self.recording.clear(self._sample_now())
        await self._line.send_clear()
        for start in range(0, len(ulaw), _CHUNK):
            chunk = ulaw[start : start + _CHUNK]
            if self.recording is not None:
                self.recording.agent(chunk, self._sample_now())
            await self._line.send_audio(chunk)
        await self._line.send_mark(MESSAGE_MARK)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(len(ulaw) / RATE + _MESSAGE_MARGIN_S):
                await self._message_heard.wait()
        await self._line.hangup()

    # --- SessionSink ----------------------------------------------------------------------

    def call_started(self, call: CallInfo, at: datetime) -> None:
        # Recording t=0 is the very instant stored as calls.started_at.
        log.info("call started: %s, agent %s", call.direction, call.agent)
        self._t0 = self._clock()
        self._started_at = at
        if self._part > 0:
            # A resumed call keeps its stored start: this part begins where the call is now.
            self._lead = round(max(0.0, (datetime.now(UTC) - at).total_seconds()) * RATE)
        if self._recordings is not None:
            self._file = self._recordings.open(
                call.tenant, call.call_sid, at, self._part, self._lead
            )
        if self._live is not None:
            self._live[call.call_sid] = self
        self._sink.call_started(call, at)

    def turn(self, call: CallInfo, turn: TurnEvent) -> None:
        if turn.role == "caller" and turn.text:
            self._caller_said.append(turn.text)
        self._sink.turn(call, turn)

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        if self._live is not None and self._live.get(call.call_sid) is self:
            del self._live[call.call_sid]
        log.info("call ended: %s", event.reason)
        self._sink.call_ended(call, event)
        if self.recording is None or self._recordings is None or self._file is None:
            return
        assert self._started_at is not None
        seconds = max(0.0, (event.ended_at - self._started_at).total_seconds())
        self._recordings.save_later(
            self._file, self.recording, call.call_sid, max(0, round(seconds * RATE) - self._lead)
        )

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None:
        self._sink.greeting_sent(call, first_audio_ms)

    def barge_in(self, call: CallInfo, clear_ms: float) -> None:
        self._sink.barge_in(call, clear_ms)

    def provider_error(self, call: CallInfo, stage: str) -> None:
        self._sink.provider_error(call, stage)

    def usage(self, call: CallInfo, usage: UsageEvent) -> None:
        self._sink.usage(call, usage)
