"""A simulated phone call, played exactly as Twilio plays one.

Signed voice webhook, TwiML parsed, Media Stream opened with the `<Parameter>`s, caller
audio paced at 20 ms, agent audio "played" in real time with marks echoed when playback
reaches them and `clear` honoured. It measures what a caller would: greeting first audio,
reply latency after the end of caller speech, and how soon a barge-in silences the agent.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from loadtest.fixtures import Utterance

FRAME_BYTES = 160
FRAME_S = 0.020
SILENCE = b"\xff" * FRAME_BYTES  # mu-law code for zero


@dataclass(frozen=True, slots=True)
class CallerTurn:
    utterance: Utterance
    #: None: wait for the agent to finish, then speak. A number: start speaking this many
    #: ms after the agent's reply became audible (a barge-in).
    barge_in_after_ms: float | None = None
    #: Silence the caller leaves after the agent stops before speaking.
    pause_ms: float = 400.0
    #: Keys pressed (one `dtmf` message each) when the turn begins, before its audio.
    dtmf: str = ""


@dataclass(slots=True)
class TurnResult:
    text: str
    barge_in: bool
    #: Wall time the caller's speech ended / began (perf_counter seconds).
    speech_end_at: float = 0.0
    onset_at: float = 0.0
    #: End of caller speech to the agent's first audio after it (ms), if any came.
    reply_ms: float | None = None
    #: Caller speech onset to the `clear` that silenced the agent (barge-ins only).
    clear_ms: float | None = None


@dataclass(slots=True)
class CallResult:
    call_sid: str
    greeting_ms: float | None = None
    turns: list[TurnResult] = field(default_factory=list)
    ended_by_server: bool = False
    #: Every agent audio byte that reached the line (mu-law), and the replies one by one.
    agent_audio: bytearray = field(default_factory=bytearray)
    replies: list[bytearray] = field(default_factory=list)
    #: When each agent media message and each clear arrived (perf_counter seconds).
    media_times: list[float] = field(default_factory=list)
    clear_times: list[float] = field(default_factory=list)
    #: Agent audio (bytes) queued but not yet played when the server closed the stream.
    unplayed_at_close: int = 0
    #: Silences inside one reply (ms): the line ran dry and the same reply's audio came
    #: later, with no caller speech or clear in between. Real-time playback allows none.
    gaps_ms: list[float] = field(default_factory=list)
    #: perf_counter() when each of those gaps ended (more audio was read).
    gap_ends: list[float] = field(default_factory=list)
    marks_echoed: int = 0
    clears: int = 0
    error: str | None = None


def _sign(validator: RequestValidator | None, url: str, params: dict[str, str]) -> dict[str, str]:
    if validator is None:
        return {}
    return {"X-Twilio-Signature": validator.compute_signature(url, params)}


class _Line:
    """Twilio's side of the stream: a playback buffer drained at real time."""

    def __init__(self) -> None:
        self.queued = 0  # bytes of agent audio received
        self.played = 0  # bytes played (or discarded by clear)
        self.marks: deque[tuple[int, str]] = deque()
        self.speaking_since: float | None = None  # when the current audible run began
        self.last_audio_at = 0.0
        #: When the line ran out of agent audio, until the caller speaks or a clear comes:
        #: audio arriving meanwhile continues the same reply after an audible gap.
        self.dry_since: float | None = None

    @property
    def idle(self) -> bool:
        return self.played >= self.queued


async def place_call(
    base_url: str,
    script: Sequence[CallerTurn],
    *,
    auth_token: str | None = None,
    public_base_url: str | None = None,
    from_number: str = "+15551230000",
    to_number: str = "+15557654321",
    reply_timeout_s: float = 30.0,
    hangup_wait_s: float = 15.0,
    call_sid: str | None = None,
    http: httpx.AsyncClient | None = None,
    keep_audio: bool = True,
) -> CallResult:
    """Play one call against a running server at `base_url` (http://host:port).

    `call_sid` fixes the CallSid ahead (a REST stand-in must know the call to update it).
    `http` shares one client between calls (a load generator places thousands);
    `keep_audio=False` keeps only timings, not the agent audio, for the same reason."""
    public = (public_base_url or base_url).rstrip("/")
    validator = RequestValidator(auth_token) if auth_token else None
    call_sid = call_sid or "CA" + secrets.token_hex(16)
    account_sid = "AC" + "0" * 32
    result = CallResult(call_sid)
    params = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": from_number,
        "To": to_number,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    try:
        response = await _post_webhook(
            http,
            base_url.rstrip("/") + "/twilio/voice",
            params,
            _sign(validator, public + "/twilio/voice", params),
        )
    except httpx.HTTPError as exc:
        result.error = f"voice webhook: {type(exc).__name__}: {exc}"
        return result
    if response.status_code != 200:
        result.error = f"voice webhook answered {response.status_code}"
        return result
    stream_url, parameters = _parse_twiml(response.text)
    target = urlsplit(base_url)
    ws_scheme = "wss" if target.scheme == "https" else "ws"
    ws_url = f"{ws_scheme}://{target.netloc}{urlsplit(stream_url).path}"
    try:
        async with connect(
            ws_url,
            additional_headers=_sign(validator, stream_url, {}),
            max_size=2**22,
            compression=None,
        ) as ws:
            conversation = _Conversation(ws, result, account_sid, keep_audio)
            await conversation.run(script, parameters, reply_timeout_s, hangup_wait_s)
    except (OSError, ConnectionClosed) as exc:
        result.error = result.error or f"media stream: {exc}"
    return result


async def _post_webhook(
    http: httpx.AsyncClient | None, url: str, params: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    if http is not None:
        return await http.post(url, data=params, headers=headers)
    async with httpx.AsyncClient(timeout=15.0) as client:
        return await client.post(url, data=params, headers=headers)


def _parse_twiml(document: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(document)
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise ValueError("TwiML has no <Connect><Stream url>")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters


class _Conversation:
    """One call's stream: the caller's 20 ms clock, the script, and Twilio's playback."""

    def __init__(
        self, ws: ClientConnection, result: CallResult, account_sid: str, keep_audio: bool = True
    ) -> None:
        self.ws = ws
        self.keep_audio = keep_audio
        self.result = result
        self.account_sid = account_sid
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.line = _Line()
        self.sequence = 1
        self.chunk = 0
        self.started = 0.0
        self.closed = asyncio.Event()
        self.arrivals: list[float] = []  # when each audible run of agent audio began
        self.clear_at: float | None = None
        self.in_speech = False  # the caller is playing an utterance
        self._prefix = (
            '{"event":"media","streamSid":"'
            + self.stream_sid
            + '","media":{"track":"inbound","chunk":"'
        )

    async def send(self, message: dict[str, object]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def run(
        self,
        script: Sequence[CallerTurn],
        parameters: dict[str, str],
        reply_timeout_s: float,
        hangup_wait_s: float,
    ) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.result.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self.started = time.perf_counter()
        receiver = asyncio.create_task(self._receive())
        try:
            try:
                for turn in script:
                    if not await self._wait_for_cue(turn, reply_timeout_s):
                        break
                    await self._speak(turn)
                deadline = time.perf_counter() + hangup_wait_s
                while not self.closed.is_set() and time.perf_counter() < deadline:
                    await self._frame(SILENCE)
            except ConnectionClosedOK:
                # The server hung up between our check and our send: a normal end, which
                # the receiver is about to see too.
                await asyncio.wait_for(self.closed.wait(), 5.0)
            self.result.ended_by_server = self.closed.is_set()
            if not self.closed.is_set():
                await self.send(
                    {
                        "event": "stop",
                        "sequenceNumber": str(self.sequence + 1),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.result.call_sid},
                    }
                )
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        for turn_result in self.result.turns:
            after = [t for t in self.arrivals if t >= turn_result.speech_end_at]
            if after and turn_result.speech_end_at:
                turn_result.reply_ms = (after[0] - turn_result.speech_end_at) * 1000

    async def _wait_for_cue(self, turn: CallerTurn, timeout_s: float) -> bool:
        """Send silence until it is the caller's moment to speak; False if the call ended."""
        line = self.line
        deadline = time.perf_counter() + timeout_s
        while not self.closed.is_set() and time.perf_counter() < deadline:
            now = time.perf_counter()
            if turn.barge_in_after_ms is None:
                replied = bool(self.arrivals) and self.arrivals[-1] >= self._last_speech_end()
                quiet_ms = (now - line.last_audio_at) * 1000
                if replied and line.idle and quiet_ms >= turn.pause_ms:
                    return True
            elif (
                line.speaking_since is not None
                and not line.idle
                and (now - line.speaking_since) * 1000 >= turn.barge_in_after_ms
            ):
                return True
            await self._frame(SILENCE)
        return not self.closed.is_set()

    def _last_speech_end(self) -> float:
        return self.result.turns[-1].speech_end_at if self.result.turns else self.started

    async def _speak(self, turn: CallerTurn) -> None:
        record = TurnResult(turn.utterance.text, turn.barge_in_after_ms is not None)
        self.result.turns.append(record)
        audio = turn.utterance.audio
        onset_frame = turn.utterance.onset_ms // 20
        end_frame = -(-turn.utterance.end_ms // 20)
        self.clear_at = None
        # Whatever the agent says from now on answers this turn: not a gap in a reply.
        self.line.dry_since = None
        self.in_speech = True
        for digit in turn.dtmf:
            self.sequence += 1
            await self.send(
                {
                    "event": "dtmf",
                    "sequenceNumber": str(self.sequence),
                    "streamSid": self.stream_sid,
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )
        for index, start in enumerate(range(0, len(audio), FRAME_BYTES)):
            if index == onset_frame:
                record.onset_at = time.perf_counter()
            if index == end_frame:
                record.speech_end_at = time.perf_counter()
            await self._frame(audio[start : start + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff"))
        self.in_speech = False
        self.line.dry_since = None
        if not record.speech_end_at:
            record.speech_end_at = time.perf_counter()
        if record.barge_in and self.clear_at is not None and record.onset_at:
            record.clear_ms = (self.clear_at - record.onset_at) * 1000

    async def _frame(self, payload: bytes) -> None:
        """Send one 20 ms frame, then play 20 ms of agent audio, on a fixed 20 ms grid."""
        self.sequence += 1
        self.chunk += 1
        await self.ws.send(
            self._prefix
            + f'{self.chunk}","timestamp":"{self.chunk * 20}","payload":"'
            + base64.b64encode(payload).decode()
            + f'"}},"sequenceNumber":"{self.sequence}"}}'
        )
        line = self.line
        if not line.idle:
            line.played = min(line.queued, line.played + FRAME_BYTES)
            while line.marks and line.marks[0][0] <= line.played:
                await self._echo(line.marks.popleft()[1])
            if line.idle:
                line.speaking_since = None
                if not self.in_speech:
                    line.dry_since = time.perf_counter()
        delay = self.started + self.chunk * FRAME_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _echo(self, name: str) -> None:
        self.sequence += 1
        self.result.marks_echoed += 1
        await self.send(
            {
                "event": "mark",
                "sequenceNumber": str(self.sequence),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    async def _receive(self) -> None:
        line, result = self.line, self.result
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                event = message.get("event")
                now = time.perf_counter()
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    if result.greeting_ms is None:
                        result.greeting_ms = (now - self.started) * 1000
                    if line.idle:
                        if line.dry_since is not None:
                            result.gaps_ms.append((now - line.dry_since) * 1000)
                            result.gap_ends.append(now)
                            line.dry_since = None
                        line.speaking_since = now
                        self.arrivals.append(now)
                        if self.keep_audio:
                            result.replies.append(bytearray())
                    if self.keep_audio:
                        result.replies[-1] += audio
                        result.agent_audio += audio
                    result.media_times.append(now)
                    line.queued += len(audio)
                    line.last_audio_at = now
                elif event == "mark":
                    line.marks.append((line.queued, message["mark"]["name"]))
                elif event == "clear":
                    result.clears += 1
                    result.clear_times.append(now)
                    self.clear_at = now
                    line.played = line.queued
                    line.speaking_since = None
                    line.dry_since = None
                    while line.marks:  # Twilio echoes every pending mark on clear
                        await self._echo(line.marks.popleft()[1])
        except ConnectionClosed:
            pass
        finally:
            result.unplayed_at_close = line.queued - line.played
            self.closed.set()
