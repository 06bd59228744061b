"""One phone call on a speech-to-speech model: caller audio straight to the model, its audio
straight back to the line, with the cascade's contract around it.

The same agent definition (instructions, greeting, tools), the cached greeting played at
once while the model connects, the same sink events (turns with a latency breakdown, usage,
barge-ins, call end) and the same tool dispatcher. The model is reached through the
SpeechToSpeech protocol only: no socket, no wire format here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prompts import AgentDefinition
from prompts.voices import language_instruction
from voice_agent.conversation.listener import CallerSpeech, Listener
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.conversation.playback import Playback, SpokenReply
from voice_agent.conversation.ports import (
    CallEndedEvent,
    CallInfo,
    CallTransport,
    SessionSink,
    TurnEvent,
    TurnLatency,
    UsageEvent,
)
from voice_agent.conversation.resumption import Resumable
from voice_agent.conversation.session import APOLOGY, CONNECTING, TEXT_PREFIX
from voice_agent.conversation.speaker import Speaker
from voice_agent.conversation.tool_dispatch import combine, dispatch_tool
from voice_agent.providers.base import ChatMessage, ProviderError
from voice_agent.providers.speech_to_speech import (
    STAGE,
    AgentTranscript,
    AudioDelta,
    CallerTranscript,
    ConnectionLost,
    FunctionCall,
    RealtimeConfig,
    RealtimeConnection,
    RealtimeEvent,
    RealtimeUsage,
    ResponseDone,
    ResponseStarted,
    SeedItem,
    ServiceError,
    SessionRefused,
    SpeechStarted,
    SpeechStopped,
    SpeechToSpeech,
    TranscriptDelta,
)
from voice_agent.providers.tools import tool_specs

log = logging.getLogger(__name__)

#: Said when the service will not serve the call (bad key, no quota), before hanging up.
UNAVAILABLE = "I'm sorry, I can't take your call right now. Please call back a little later."
_PLAYBACK_MARGIN_S = 5.0
#: Caller audio kept while the model connects (or reconnects), then sent at once.
_PENDING_MAX_BYTES = 8000 * 2


@dataclass(frozen=True, slots=True)
class RealtimeSessionConfig:
    #: Who decides a barge-in: the model's server VAD, or our own VAD ("local").
    barge_in: Literal["server", "local"] = "server"
    endpointing_silence_ms: int = 500
    barge_in_min_ms: int = 120
    vad_aggressiveness: int = 2
    #: No audio this long after the caller's turn ended: the recovery phrase.
    stall_s: float = 4.0
    reconnect_attempts: int = 3
    reconnect_delay_s: float = 0.2


@dataclass(slots=True)
class _Turn:
    """One model response as it is heard."""

    reply: SpokenReply
    response_id: str = ""
    item_id: str = ""
    #: perf_counter() of the caller's speech end, of speech_stopped and response.created.
    speech_end_at: float | None = None
    stopped_at: float | None = None
    created_at: float | None = None
    first_delta_at: float | None = None
    received_ms: float = 0.0
    calls: list[FunctionCall] = field(default_factory=list)
    done: bool = False
    closed: bool = False

    def latency(self) -> TurnLatency | None:
        first_audio = self.reply.first_audio_at
        if None in (first_audio, self.speech_end_at, self.stopped_at, self.first_delta_at):
            return None
        assert first_audio is not None and self.speech_end_at is not None
        assert self.stopped_at is not None and self.first_delta_at is not None
        created = self.created_at if self.created_at is not None else self.first_delta_at
        return TurnLatency(
            endpointing_ms=(self.stopped_at - self.speech_end_at) * 1000.0,
            stt_ms=0.0,
            llm_first_token_ms=max(0.0, created - self.stopped_at) * 1000.0,
            llm_ms=max(0.0, self.first_delta_at - self.stopped_at) * 1000.0,
            tts_first_byte_ms=None,
            total_ms=(first_audio - self.speech_end_at) * 1000.0,
        )


class RealtimeCallSession(Resumable):
    """The StreamHandler for a call on the realtime pipeline (see CallSession for the
    cascade). States: listening, thinking (a response under way, nothing audible),
    speaking (its audio queued at Twilio), ended."""

    def __init__(
        self,
        *,
        call: CallInfo,
        agent: AgentDefinition,
        model: SpeechToSpeech,
        phrases: PhraseCache,
        transport: CallTransport,
        sink: SessionSink,
        config: RealtimeSessionConfig | None = None,
    ) -> None:
        self.call = call
        self._agent = agent
        self._model = model
        self._phrases = phrases
        self._transport = transport
        self._sink = sink
        self._config = config or RealtimeSessionConfig()
        self._playback = Playback()
        self._speaker = Speaker(transport, self._playback)
        self._history: list[ChatMessage] = []
        self._conn: RealtimeConnection | None = None
        self._pending_audio = bytearray()
        self._audio_ms_sent = 0.0  # caller audio given to this connection
        self._listener: Listener | None = None
        if self._config.barge_in == "local":
            self._listener = Listener(
                self._local_speech_started,
                self._local_speech_ended,
                start_ms=self._config.barge_in_min_ms,
                silence_ms=self._config.endpointing_silence_ms,
                aggressiveness=self._config.vad_aggressiveness,
            )
        self._turn: _Turn | None = None  # the response being generated or heard
        self._next_timing: tuple[float, float] | None = None  # (speech end, stopped at)
        self._phrase: tuple[SpokenReply, asyncio.Task[None]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stall: asyncio.TimerHandle | None = None
        self._reply_ids = 0
        self._seq = 0
        self._clear_ms: list[float] = []
        self._ended = False
        self._ending = False  # the agent decided to end: nothing more from the model
        self._end_reason: str | None = None
        #: What we say first ourselves (the greeting, or a resumed call's apology), and how
        #: much history there was before it (the stored turns of a resumed call).
        self._greeting_text = ""
        self._history_before_greeting = 0
        self._caller_onset_wall = 0.0

    # --- state ---------------------------------------------------------------------------

    @property
    def state(self) -> Literal["listening", "thinking", "speaking", "ended"]:
        if self._ended:
            return "ended"
        if self._playback.audible:
            return "speaking"
        if self._turn is not None and not self._turn.done:
            return "thinking"
        return "listening"

    @property
    def history(self) -> list[ChatMessage]:
        return self._history

    @property
    def end_reason(self) -> str | None:
        return self._end_reason

    # --- events in (StreamHandler) -------------------------------------------------------

    async def start(self, started_at: float | None = None) -> None:
        started_at = time.perf_counter() if started_at is None else started_at
        self._greeting_text, started = self._opening()
        self._sink.call_started(self.call, started)
        self._history_before_greeting = len(self._history)
        self._play_phrase(self._greeting_text, started_at=started_at)
        self._runner = self._spawn(self._run())

    def on_audio(self, ulaw: bytes) -> None:
        if self._ended:
            return
        if self._listener is not None:
            self._listener.push(ulaw)
        conn = self._conn
        if conn is not None:
            conn.append_audio(ulaw)
            self._audio_ms_sent += len(ulaw) / 8.0
        else:
            self._pending_audio += ulaw
            if len(self._pending_audio) > _PENDING_MAX_BYTES:
                del self._pending_audio[: len(self._pending_audio) - _PENDING_MAX_BYTES]

    def on_mark(self, name: str) -> None:
        self._playback.echoed(name)

    def on_dtmf(self, digit: str) -> None:
        self._tell_model(f"[DTMF {digit}]")

    def on_text(self, text: str) -> bool:
        """A text sent during the call (see CallSession.on_text), passed to the model."""
        return self._tell_model(f"{TEXT_PREFIX} {text}")

    def _tell_model(self, event: str) -> bool:
        """An event of the call (a key press, a text) as a user turn for the model; False
        when there is no model to tell."""
        if self._ended or self._conn is None:
            return False
        self._emit("event", event, time.time(), False, None)
        self._history.append(ChatMessage("user", event))
        self._background_task(self._say_to_model(event))
        return True

    async def end(self, reason: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._end_reason = self._end_reason or reason or "stream-closed"
        self._disarm_stall()
        tasks = [t for t in (self._runner, *self._background) if t is not None and not t.done()]
        if self._phrase is not None:
            tasks.append(self._phrase[1])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._drop_connection()
        if self._listener is not None:
            self._listener.close()
        if self._turn is not None:
            self._close_turn(self._turn, interrupted=True)
        self._sink.call_ended(
            self.call, CallEndedEvent(datetime.now(UTC), self._end_reason, self._clear_ms)
        )

    # --- the model connection -------------------------------------------------------------

    def _realtime_config(self) -> RealtimeConfig:
        seed = [
            SeedItem("user" if m.role == "user" else "assistant", m.content)
            for m in self._history
            if m.role in ("user", "assistant") and m.content
        ]
        if len(self._history) == self._history_before_greeting and self._greeting_text:
            # We speak the greeting (or apology) ourselves, and it joins the history only
            # once heard; the model, connected meanwhile, must know it was said.
            seed.append(SeedItem("assistant", self._greeting_text))
        return RealtimeConfig(
            instructions=self._agent.render(self._agent.system_prompt, self.call.variables)
            + language_instruction(self._agent.language),
            voice=self._agent.voice,
            tools=tool_specs(self._agent.tools),
            barge_in=self._config.barge_in,
            # The agent's own endpointing silence when it sets one, as in the cascade.
            silence_ms=self._agent.turn_taking.silence_ms or self._config.endpointing_silence_ms,
            seed=seed,
            language=self._agent.language,
        )

    async def _run(self) -> None:
        """Connect, serve the model's events, and reconnect when the socket drops."""
        failures = 0
        reconnecting = False
        while not self._ended and not self._ending:
            try:
                conn = await self._model.connect(self._realtime_config())
            except SessionRefused as exc:
                await self._refused(exc)
                return
            except ProviderError as exc:
                self._provider_failed(exc)
                failures += 1
                if failures > self._config.reconnect_attempts:
                    await self._refused(SessionRefused("unavailable", str(exc)))
                    return
                await asyncio.sleep(self._config.reconnect_delay_s * failures)
                continue
            self._conn = conn
            self._audio_ms_sent = 0.0
            if self._pending_audio:
                conn.append_audio(bytes(self._pending_audio))
                self._audio_ms_sent = len(self._pending_audio) / 8.0
                self._pending_audio.clear()
            if reconnecting and self._history and self._history[-1].role == "user":
                # The caller's last turn went unanswered when the socket dropped.
                self._arm_stall()
                await conn.create_response()
            try:
                async for event in conn.events():
                    failures = 0
                    await self._handle(event)
                return
            except SessionRefused as exc:
                await self._drop_connection()
                await self._refused(exc)
                return
            except ConnectionLost as exc:
                self._provider_failed(exc)
                await self._drop_connection()
                if self._turn is not None and not self._turn.done:
                    # Its audio so far still plays; it is all there will be of it.
                    self._turn.done = True
                    self._background_task(self._finish_turn(self._turn))
                failures += 1
                reconnecting = True
                if failures > self._config.reconnect_attempts:
                    await self._refused(SessionRefused("unavailable", str(exc)))
                    return
                await asyncio.sleep(self._config.reconnect_delay_s)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.aclose()

    async def _say_to_model(self, text: str) -> None:
        conn = self._conn
        if conn is None:
            return
        self._interrupt(time.perf_counter())
        await conn.add_message("user", text)
        self._arm_stall()
        await conn.create_response()

    # --- the model's events ---------------------------------------------------------------

    async def _handle(self, event: RealtimeEvent) -> None:
        if isinstance(event, AudioDelta):
            await self._audio(event)
        elif isinstance(event, TranscriptDelta):
            turn = self._turn
            if turn is not None and not turn.closed and event.item_id == turn.item_id:
                self._set_text(turn, turn.reply.text + event.text)
        elif isinstance(event, AgentTranscript):
            turn = self._turn
            if turn is not None and not turn.closed and event.item_id == turn.item_id:
                self._set_text(turn, event.text)
        elif isinstance(event, SpeechStarted):
            behind_ms = max(0.0, self._audio_ms_sent - event.audio_start_ms)
            self._caller_onset_wall = time.time() - behind_ms / 1000.0
            if self._config.barge_in == "server":
                self._interrupt(time.perf_counter())
        elif isinstance(event, SpeechStopped):
            now = time.perf_counter()
            behind_ms = max(0.0, self._audio_ms_sent - event.audio_end_ms)
            self._next_timing = (now - behind_ms / 1000.0, now)
            self._arm_stall()
        elif isinstance(event, CallerTranscript):
            text = event.text.strip()
            if any(ch.isalnum() for ch in text):
                self._emit("caller", text, self._caller_onset_wall or time.time(), False, None)
                self._history.append(ChatMessage("user", text))
        elif isinstance(event, ResponseStarted):
            self._response_started(event)
        elif isinstance(event, FunctionCall):
            turn = self._turn
            if turn is not None and not turn.closed:
                turn.calls.append(event)
        elif isinstance(event, ResponseDone):
            self._response_done(event)
        elif isinstance(event, ServiceError):
            log.info(
                "call %s: realtime error %s: %s", self.call.call_sid, event.code, event.message
            )

    def _response_started(self, event: ResponseStarted) -> None:
        if self._ending:
            return
        self._reply_ids += 1
        turn = _Turn(SpokenReply(self._reply_ids, started_wall=time.time()), event.response_id)
        turn.reply.add_sentence("")
        turn.created_at = time.perf_counter()
        if self._next_timing is not None:
            turn.speech_end_at, turn.stopped_at = self._next_timing
            self._next_timing = None
        previous, self._turn = self._turn, turn
        if previous is not None and not previous.closed and not previous.done:
            previous.done = True
            self._background_task(self._finish_turn(previous))

    async def _audio(self, event: AudioDelta) -> None:
        turn = self._turn
        if (
            turn is None
            or turn.closed
            or turn.reply.cancelled
            or turn.response_id != event.response_id
        ):
            return  # a cancelled or stale response's audio: the caller must not hear it
        if turn.first_delta_at is None:
            turn.first_delta_at = time.perf_counter()
            self._disarm_stall()
        turn.item_id = turn.item_id or event.item_id
        offset = turn.received_ms
        turn.received_ms += len(event.ulaw) / 8.0
        turn.reply.durations_ms[0] = turn.received_ms
        await self._speaker.play(event.ulaw, turn.reply, 0, offset)

    def _set_text(self, turn: _Turn, text: str) -> None:
        turn.reply.sentences[0] = text

    def _response_done(self, event: ResponseDone) -> None:
        if event.usage is not None:
            self._meter(event.usage)
        turn = self._turn
        if turn is None or turn.response_id != event.response_id or turn.closed:
            return
        turn.done = True
        if event.status != "completed" and not turn.calls:
            if turn.reply.audio_sent:
                self._background_task(self._finish_turn(turn))
            else:
                self._close_turn(turn, interrupted=True)
            return
        if turn.calls:
            self._background_task(self._run_tools(turn))
        else:
            self._background_task(self._finish_turn(turn))

    async def _finish_turn(self, turn: _Turn) -> None:
        latency = turn.latency()
        await self._heard(turn.reply)
        self._close_turn(turn, interrupted=False, latency=latency)

    def _close_turn(
        self, turn: _Turn, *, interrupted: bool, latency: TurnLatency | None = None
    ) -> None:
        if turn.closed:
            return
        turn.closed = True
        if self._turn is turn:
            self._turn = None
        text = turn.reply.heard_text() if interrupted else turn.reply.text
        text = text.strip()
        if text:
            self._history.append(ChatMessage("assistant", text))
        if text or (not interrupted and turn.reply.audio_sent):
            self._emit("agent", text, turn.reply.started_wall, interrupted, latency)

    # --- tools ----------------------------------------------------------------------------

    async def _run_tools(self, turn: _Turn) -> None:
        ending: tuple[str, str | None] | None = None
        conn = self._conn
        for call in turn.calls:
            outcome = dispatch_tool(call.name, self._agent)
            ending = combine(ending, outcome)
            if conn is not None:
                await conn.function_output(call.call_id, outcome.result)
        if ending is None:
            # The model answers its tools' results in a response of its own, queued at
            # the line behind what this one still has to play.
            self._background_task(self._finish_turn(turn))
            if conn is not None:
                self._arm_stall()
                await conn.create_response()
            return
        self._ending = True
        reason, number = ending
        latency = turn.latency()
        await self._heard(turn.reply)
        self._close_turn(turn, interrupted=False, latency=latency)
        if not turn.reply.audio_sent:
            goodbye = self._agent.render_speech(self._agent.goodbye, self.call.variables)
            await self._say(CONNECTING if number else goodbye)
        self._end_reason = reason
        if number:
            await self._transport.transfer(number)
        else:
            await self._transport.hangup()

    # --- barge-in -------------------------------------------------------------------------

    def _local_speech_started(self, onset_at: float) -> None:
        self._interrupt(onset_at, cancel_model=True)

    def _local_speech_ended(self, _speech: CallerSpeech) -> None:
        pass  # the model's VAD ends the caller's turn; ours only decides barge-ins

    def _interrupt(self, onset_at: float, *, cancel_model: bool = False) -> None:
        """The caller talks over us: stop what plays, tell the model what was heard.
        Synchronous on the audio path: no audio of the cut reply is sent after it."""
        if self._ending:
            return
        audible = self._playback.audible
        phrase = self._phrase
        if phrase is not None and not phrase[1].done():
            phrase[0].cancelled = True
            phrase[1].cancel()
        turn = self._turn
        if turn is not None and not turn.closed:
            turn.reply.cancelled = True
            conn = self._conn
            if conn is not None:
                heard_ms = turn.reply.heard[1] if turn.reply.heard[0] == 0 else 0.0
                if turn.item_id and turn.reply.audio_sent:
                    played = int(min(heard_ms, turn.received_ms))
                    self._background_task(conn.truncate(turn.item_id, played))
                if cancel_model and not turn.done:
                    self._background_task(conn.cancel_response())
            self._close_turn(turn, interrupted=True)
        self._disarm_stall()
        if audible:
            self._playback.clear()
            self._background_task(self._send_clear(onset_at))

    async def _send_clear(self, onset_at: float) -> None:
        await self._transport.send_clear()
        clear_ms = (time.perf_counter() - onset_at) * 1000.0
        self._clear_ms.append(clear_ms)
        self._sink.barge_in(self.call, clear_ms)

    # --- our own phrases (greeting, recovery, goodbye) ------------------------------------

    def _play_phrase(self, text: str, *, started_at: float | None = None) -> None:
        self._reply_ids += 1
        reply = SpokenReply(self._reply_ids, started_wall=time.time())
        task = self._spawn(self._phrase_task(reply, text, started_at))
        self._phrase = (reply, task)

    async def _phrase_task(self, reply: SpokenReply, text: str, started_at: float | None) -> None:
        try:
            await self._speak_phrase(reply, text)
            if started_at is not None and reply.first_audio_at is not None:
                self._sink.greeting_sent(self.call, (reply.first_audio_at - started_at) * 1000.0)
            await self._heard(reply)
            self._history.append(ChatMessage("assistant", text))
            self._emit("agent", text, reply.started_wall, False, None)
        except asyncio.CancelledError:
            heard = reply.heard_text()
            if heard:
                self._history.append(ChatMessage("assistant", heard))
            if heard or reply.audio_sent:
                self._emit("agent", heard, reply.started_wall, True, None)
            raise

    async def _speak_phrase(self, reply: SpokenReply, text: str) -> None:
        audio = await self._phrases.get(text, self._agent.voice)
        index = reply.add_sentence(text)
        reply.durations_ms[index] = len(audio) / 8.0
        await self._speaker.play(audio, reply, index, 0.0)

    async def _say(self, text: str) -> None:
        """A phrase the caller cannot cut short (last words)."""
        self._reply_ids += 1
        reply = SpokenReply(self._reply_ids, started_wall=time.time())
        await self._speak_phrase(reply, text)
        await self._heard(reply)
        self._emit("agent", text, reply.started_wall, False, None)

    async def _heard(self, reply: SpokenReply) -> None:
        if self._playback.audible:
            limit = reply.sent_ms / 1000.0 + _PLAYBACK_MARGIN_S
            if not await self._playback.wait_idle(limit):
                log.info("call %s: marks not echoed; taking the reply as heard", self.call.call_sid)
                self._playback.clear()

    # --- faults ---------------------------------------------------------------------------

    def _arm_stall(self) -> None:
        self._disarm_stall()
        loop = asyncio.get_running_loop()
        self._stall = loop.call_later(self._config.stall_s, self._stalled)

    def _disarm_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        """The model went quiet after the caller's turn: say the recovery phrase (the
        caller asked something and hears nothing otherwise) and drop the late response."""
        self._stall = None
        if self._ended or self._ending:
            return
        self._provider_failed(ProviderError(STAGE, "stalled: no audio after the caller's turn"))
        turn = self._turn
        if turn is not None and not turn.closed:
            turn.reply.cancelled = True
            if self._conn is not None and not turn.done:
                self._background_task(self._conn.cancel_response())
            self._close_turn(turn, interrupted=True)
        elif self._conn is not None:
            self._background_task(self._conn.cancel_response())
        self._next_timing = None
        self._play_phrase(APOLOGY)

    async def _refused(self, exc: SessionRefused) -> None:
        """The service will not serve this call: finish the greeting, apologise, hang up,
        and store why."""
        self._provider_failed(exc)
        self._ending = True
        self._end_reason = f"realtime-refused:{exc.code}"
        phrase = self._phrase
        if phrase is not None and not phrase[1].done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(phrase[1])
        await self._say(UNAVAILABLE)
        await self._transport.hangup()

    # --- plumbing -------------------------------------------------------------------------

    def _meter(self, usage: RealtimeUsage) -> None:
        model = self._model.usage_model
        for meter, quantity in (
            ("realtime_audio_input_tokens", usage.audio_input_tokens),
            ("realtime_audio_output_tokens", usage.audio_output_tokens),
            ("realtime_text_input_tokens", usage.text_input_tokens),
            ("realtime_text_output_tokens", usage.text_output_tokens),
        ):
            if quantity:
                self._sink.usage(self.call, UsageEvent(meter, quantity, model))

    def _provider_failed(self, exc: ProviderError) -> None:
        log.warning("call %s: %s", self.call.call_sid, str(exc))
        self._sink.provider_error(self.call, exc.stage)

    def _emit(
        self,
        role: Literal["caller", "agent", "event"],
        text: str,
        started_wall: float,
        interrupted: bool,
        latency: TurnLatency | None,
    ) -> None:
        self._seq += 1
        self._sink.turn(
            self.call,
            TurnEvent(
                seq=self._seq,
                role=role,
                text=text,
                started_at=datetime.fromtimestamp(started_wall, UTC),
                ended_at=datetime.now(UTC),
                interrupted=interrupted,
                latency=latency,
            ),
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(self._guard(work))

    def _background_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._spawn(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: realtime session task failed", self.call.call_sid)
