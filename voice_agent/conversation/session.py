"""One phone call: listen, think, speak, and stop at once when the caller talks over us."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from prompts import AgentDefinition
from voice_agent.conversation.early_reply import EarlyReply
from voice_agent.conversation.listener import CallerSpeech, Listener, PausedSpeech, TurnWaits
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
from voice_agent.conversation.sentences import SentenceSplitter
from voice_agent.conversation.speaker import Speaker
from voice_agent.conversation.tool_dispatch import combine, dispatch_tool
from voice_agent.conversation.turn_end import is_backchannel, judge, question_kind
from voice_agent.providers.base import (
    ChatMessage,
    Pipeline,
    ProviderError,
    TextDelta,
    TokenUsage,
    ToolCall,
)
from voice_agent.providers.resilience import current_tenant, served_model

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I'm having trouble hearing you right now. Could you say that again?"
CONNECTING = "Connecting you now."
#: Before the agent's own goodbye when we end the call (a worker draining, an admin).
ENDING_NOW = "I'm sorry, I have to end our call now."
#: Said (from cached audio) while a late reply is still being retried, so the caller is
#: never left in silence; the second one if the first did not cover the wait.
HOLD_ON = "One moment, please."
#: How a text sent during the call appears in its history and transcript.
TEXT_PREFIX = "[SMS]"
STILL_WORKING = "Still working on that, thanks for waiting."
#: After repeated provider failures: the call is handed on or ended, politely.
TROUBLE_TRANSFER = "I'm sorry, I'm having technical trouble. Let me connect you to a colleague."
TROUBLE_GOODBYE = (
    "I'm sorry, I'm having technical trouble. Please call back a little later. Goodbye."
)
TIME_WARNING = "Just so you know, we'll need to wrap up this call shortly."
TIME_UP = "We've reached the time limit for this call. Thank you for calling. Goodbye."
#: Every fixed phrase a call may need when providers fail: made before any call.
RECOVERY_PHRASES = (
    APOLOGY,
    HOLD_ON,
    STILL_WORKING,
    TROUBLE_TRANSFER,
    TROUBLE_GOODBYE,
    TIME_WARNING,
    TIME_UP,
)
#: Marks may never come back (a peer that ignores them): beyond the audio's own length plus
#: this margin, the reply is taken as heard.
_PLAYBACK_MARGIN_S = 5.0
_MAX_TOOL_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class SessionConfig:
    endpointing_silence_ms: int = 500
    barge_in_min_ms: int = 120
    vad_aggressiveness: int = 2
    #: A reply with no audio this long after the turn ended gets a recovery phrase.
    recovery_after_s: float = 2.0
    #: Silence allowed after a recovery phrase before the next one (under 3 s of dead air).
    recovery_gap_s: float = 2.0
    #: Turns in a row lost to provider failures before the call is transferred or ended.
    failed_turns_before_end: int = 3
    #: No media for this long ends the call (0: never).
    media_timeout_s: float = 10.0
    #: The longest call, and the warning this long before its end (0: no limit).
    max_call_s: float = 0.0
    call_warning_s: float = 60.0
    #: The VAD's level gate follows the line's noise floor instead of a fixed -50 dBFS.
    adaptive_noise_floor: bool = True


@dataclass(slots=True)
class _Timing:
    speech_end: float
    endpointing_ms: float
    stt_ms: float
    llm_started: float = 0.0
    first_token_ms: float | None = None
    first_sentence_ms: float | None = None
    tts_first_byte_ms: float | None = None

    def latency(self, first_audio_at: float | None) -> TurnLatency | None:
        if first_audio_at is None or self.first_sentence_ms is None:
            return None
        return TurnLatency(
            endpointing_ms=self.endpointing_ms,
            stt_ms=self.stt_ms,
            llm_first_token_ms=self.first_token_ms,
            llm_ms=self.first_sentence_ms,
            tts_first_byte_ms=self.tts_first_byte_ms,
            total_ms=(first_audio_at - self.speech_end) * 1000.0,
        )


class CallSession(Resumable):
    """States: listening (no reply running), thinking (reply running, nothing audible),
    speaking (reply audio queued at Twilio and not yet heard), ended.

    Sans-IO towards the phone: events come in through on_* methods, audio goes out through
    a CallTransport. The reply task owns everything from STT to the last mark echoed, so
    cancelling it is the whole of stopping.
    """

    def __init__(
        self,
        *,
        call: CallInfo,
        agent: AgentDefinition,
        pipeline: Pipeline,
        phrases: PhraseCache,
        transport: CallTransport,
        sink: SessionSink,
        config: SessionConfig | None = None,
    ) -> None:
        config = config or SessionConfig()
        self.call = call
        self._agent = agent
        self._pipeline = pipeline
        self._phrases = phrases
        self._transport = transport
        self._sink = sink
        self._dialogue = pipeline.dialogue.start(agent, call.variables)
        self._history: list[ChatMessage] = []
        self._playback = Playback()
        self._speaker = Speaker(transport, self._playback)
        # The agent's own turn-taking settings (#18) win over the server's.
        taking = agent.turn_taking
        self._silence_ms = taking.silence_ms or config.endpointing_silence_ms
        self._waits = (
            TurnWaits(
                taking.speculation_ms,
                taking.min_wait_ms,
                taking.max_wait_ms,
                taking.likely_wait_ms,
            )
            if taking.text_aware
            else None
        )
        self._listener = Listener(
            self._speech_started,
            self._speech_ended,
            start_ms=taking.interruption_min_ms or config.barge_in_min_ms,
            silence_ms=self._silence_ms,
            aggressiveness=config.vad_aggressiveness,
            waits=self._waits,
            on_pause=self._paused if self._waits is not None else None,
            adaptive_floor=config.adaptive_noise_floor,
        )
        #: Caller voice while the agent speaks only pauses it (see _hold).
        self._resume_on_backchannel = taking.resume_on_backchannel
        #: The transcript deciding whether a held reply resumes (see _decide), and the
        #: caller audio heard while it was held.
        self._deciding: asyncio.Task[None] | None = None
        self._held_speech: list[np.ndarray] = []
        #: The model's reply started at a pause judged finished (see _start_early).
        self._early_llm = taking.early_llm and self._waits is not None
        self._early: EarlyReply | None = None
        #: Speculative transcripts of the turn so far, by pause (see _paused).
        self._speculative: dict[int, asyncio.Task[str | None]] = {}
        #: What the agent last said: the question the caller's turn answers.
        self._asked = ""
        self._reply: SpokenReply | None = None
        self._reply_ids = 0
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._unheard: list[np.ndarray] = []
        self._seq = 0
        self._clear_ms: list[float] = []
        self._ended = False
        #: Set once we are saying goodbye on our own initiative: caller speech is not answered.
        self._closing = False
        #: The context of whoever made the session (the call's socket task, which names the
        #: call for the logs): the reply tasks run in a copy of it, though most are started
        #: from frame callbacks outside that task.
        self._context = contextvars.copy_context()
        self._end_reason: str | None = None
        self._config = config
        self._failed_turns = 0
        self._watch: asyncio.Task[None] | None = None
        self._frames_in = 0
        # The names usage is priced under; a provider without one is metered unnamed.
        self._stt_model: str = getattr(pipeline.stt, "usage_model", "")
        self._tts_model: str = getattr(pipeline.tts, "usage_model", "")

    # --- state ---------------------------------------------------------------------------

    @property
    def state(self) -> Literal["listening", "thinking", "speaking", "ended"]:
        if self._ended:
            return "ended"
        if self._playback.audible:
            return "speaking"
        if self._task is not None and not self._task.done():
            return "thinking"
        return "listening"

    @property
    def history(self) -> list[ChatMessage]:
        return self._history

    @property
    def end_reason(self) -> str | None:
        return self._end_reason

    # --- events in -----------------------------------------------------------------------

    async def start(self, started_at: float | None = None) -> None:
        """Greet at once: the greeting is cached audio, so nothing waits on a provider."""
        started_at = time.perf_counter() if started_at is None else started_at
        text, started = self._opening()
        self._sink.call_started(self.call, started)
        self._task = self._spawn(self._greet(text, started_at))
        config = self._config
        if config.media_timeout_s > 0 or config.max_call_s > 0:
            self._background_task(self._watch_call(started_at))

    def on_audio(self, ulaw: bytes) -> None:
        if not self._ended:
            self._frames_in += 1  # all the media watch needs, per frame
            self._listener.push(ulaw)

    def on_mark(self, name: str) -> None:
        self._playback.echoed(name)

    def on_dtmf(self, digit: str) -> None:
        self._answer_event(f"[DTMF {digit}]")

    def on_text(self, text: str) -> bool:
        """A text message sent by the other party during the call (an SMS naming it, from
        another worker through call_control): taken like a key press, as an event turn the
        agent answers by voice. False once the call is ending (nobody would answer it)."""
        return self._answer_event(f"{TEXT_PREFIX} {text}")

    def _answer_event(self, event: str) -> bool:
        """An event of the call (a key press, a text) as the caller's turn: it interrupts
        the agent and is answered by voice."""
        if self._ended or self._closing:
            return False
        now = time.perf_counter()
        self._interrupt(now)
        self._task = self._spawn(self._respond_to_text(event, now))
        self._watch_for_dead_air(now)
        return True

    async def end(self, reason: str | None = None) -> None:
        """The stream is over: finish every task and record the call. Safe to call twice."""
        if self._ended:
            return
        self._ended = True
        # The agent's own reason (hang-up, transfer) wins over how the socket went down.
        self._end_reason = self._end_reason or reason or "stream-closed"
        speculative = self._speculative.values()
        tasks = [
            t
            for t in (self._task, self._deciding, *self._background, *speculative)
            if t is not None and not t.done()
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A cancelled task keeps its traceback, whose frames hold this session.
        self._watch = self._task = self._deciding = None
        self._drop_early()
        self._listener.close()
        if self._reply is not None:
            self._reply.cancelled = True
            self._close_reply(interrupted=True)
        self._sink.call_ended(
            self.call, CallEndedEvent(datetime.now(UTC), self._end_reason, self._clear_ms)
        )

    async def say_goodbye(self, reason: str, text: str | None = None) -> None:
        """End the call from our side (a draining worker, an admin's "end this call"): stop
        the reply in flight, say a short goodbye in the agent's own voice, wait until it has
        been heard (bounded by the marks' margin), and hang up. The caller can no longer
        interrupt it. The stream's end then records the call with ``reason``."""
        if self._ended or self._closing:
            return
        self._interrupt(time.perf_counter())
        self._closing = True
        self._end_reason = reason
        if text is None:
            goodbye = self._agent.render_speech(self._agent.goodbye, self.call.variables)
            text = f"{ENDING_NOW} {goodbye}"
        self._task = self._spawn(self._goodbye(text))
        await asyncio.gather(self._task, return_exceptions=True)

    async def _goodbye(self, text: str) -> None:
        try:
            await self._say(text)
        finally:
            await self._transport.hangup()

    # --- listening -----------------------------------------------------------------------

    def _speech_started(self, onset_at: float) -> None:
        if self._closing or self._playback.holding:
            return  # already paused for this caller: their speech's end decides
        task, reply = self._task, self._reply
        if (
            self._resume_on_backchannel
            and self._playback.audible
            and reply is not None
            and task is not None
            and not task.done()
        ):
            self._hold(onset_at)
        else:
            self._interrupt(onset_at)

    def _hold(self, onset_at: float) -> None:
        """Caller voice over the agent: clear the line at once (the same clear, and the
        same budget, as a barge-in) but keep the reply and its unheard audio. Whether it
        was an interruption is known only when the caller stops (see _decide)."""
        self._playback.hold()
        self._background_task(self._send_clear(onset_at))

    def _speech_ended(self, speech: CallerSpeech) -> None:
        if self._closing:
            return
        # The transcript made at the pause that ended the turn is the turn's transcript;
        # those of earlier pauses are stale (the caller went on).
        heard = self._speculative.pop(speech.pause, None) if speech.pause else None
        for stale in self._speculative.values():
            stale.cancel()
        self._speculative.clear()
        if self._playback.holding:
            deciding = self._deciding
            if deciding is not None and not deciding.done():
                # More speech before the last was judged: judge it all together.
                deciding.cancel()
                heard = None
            self._held_speech.append(speech.pcm16)
            if len(self._held_speech) > 1:
                speech.pcm16 = np.concatenate(self._held_speech)
                heard = None
            self._deciding = self._spawn(self._decide(speech, heard))
            return
        if self._unheard:
            # The caller went on talking before the last turn was understood: hear it whole.
            speech.pcm16 = np.concatenate([*self._unheard, speech.pcm16])
            self._unheard.clear()
            heard = None
        early, self._early = self._early, None
        if early is not None and (speech.pause == 0 or early.pause != speech.pause):
            early.cancel()  # started at a pause the caller talked on through
            early = None
        self._interrupt(speech.end_at)  # a DTMF reply may have started meanwhile
        self._task = self._spawn(self._respond_to_speech(speech, heard, early=early))
        # Due from the turn's end (the endpointing silence is the caller's own pause).
        self._watch_for_dead_air(time.perf_counter())

    def _paused(self, paused: PausedSpeech) -> None:
        """A short pause in the caller's turn: transcribe it so far, judge whether it is
        finished, and tell the listener how long to wait (text-aware end of turn)."""
        self._drop_early()  # the caller went on after the pause it was started at
        if not self._ended:
            self._speculative[paused.pause] = asyncio.create_task(
                self._speculate(paused), context=self._call_context()
            )

    async def _speculate(self, paused: PausedSpeech) -> str | None:
        """The transcript of the turn so far (None if it failed); sets the pause's wait."""
        audio_s = len(paused.pcm16) / 8000.0
        try:
            transcript = await self._pipeline.stt.transcribe(
                paused.pcm16, 8000, language=self._agent.language
            )
        except asyncio.CancelledError:
            self._stt_usage(audio_s)
            raise
        except ProviderError as exc:
            log.info("call %s: speculative transcript failed: %s", self.call.call_sid, str(exc))
            self._listener.verdict(paused.pause, self._silence_ms)
            return None  # the ordinary silence wait applies, and the turn is heard again
        self._stt_usage(audio_s)
        text = transcript.text.strip()
        waits = self._waits
        assert waits is not None
        verdict = judge(text, question_kind(self._asked))
        wait = waits.wait_for(verdict, self._silence_ms)
        if verdict == "complete":
            self._start_early(paused.pause, text)
        self._listener.verdict(paused.pause, wait)
        return text

    def _start_early(self, pause: int, text: str) -> None:
        """Ask the model now, at a pause that reads as the end of the turn: its answer is
        held until the turn does end there (see _respond_to_speech) and dropped if the
        caller goes on. Not while a reply is held for a possible interruption, whose
        outcome changes the history the model would be asked with."""
        if (
            not self._early_llm
            or self._ended
            or self._closing
            or self._playback.holding
            or not any(ch.isalnum() for ch in text)
        ):
            return
        self._drop_early()
        history = [*self._history, ChatMessage("user", text)]
        self._early = EarlyReply(
            pause, text, len(self._history), self._dialogue.respond(history), self._call_context()
        )

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early.cancel()
            self._early = None

    def _interrupt(self, onset_at: float) -> None:
        """Barge-in: stop the reply in flight and drop whatever Twilio still has queued.
        Runs synchronously on the audio path, so no audio of this reply is sent after it."""
        task, reply = self._task, self._reply
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._drop_early()
        deciding = self._deciding
        if deciding is not None and deciding is not asyncio.current_task():
            deciding.cancel()
        self._deciding = None
        self._held_speech.clear()
        if task is None or task.done():
            if self._playback.holding:
                self._playback.clear()
            return
        task.cancel()
        if reply is not None:
            reply.cancelled = True
            if self._playback.audible:
                self._playback.clear()
                self._background_task(self._send_clear(onset_at))
            elif self._playback.holding:
                self._playback.clear()  # the line was cleared when the hold began
            self._close_reply(interrupted=True)

    async def _decide(self, speech: CallerSpeech, heard: asyncio.Task[str | None] | None) -> None:
        """The caller spoke over the agent and has stopped: nothing, or only a backchannel,
        resumes the held reply where it stopped; words interrupt it and take the turn."""
        stt_started = time.perf_counter()
        text = await heard if heard is not None else None
        if text is None:
            audio_s = len(speech.pcm16) / 8000.0
            try:
                transcript = await self._pipeline.stt.transcribe(
                    speech.pcm16, 8000, language=self._agent.language
                )
            except ProviderError as exc:
                # Not known what was said: taken as an interruption, as without the hold;
                # the turn's own transcription is tried again (and apologised for).
                log.info(
                    "call %s: transcript of an interruption failed: %s",
                    self.call.call_sid,
                    str(exc),  # not the error: a kept log record would keep this session
                )
                self._take_turn(speech, None)
                return
            finally:
                self._stt_usage(audio_s)
            text = transcript.text.strip()
        if self._playback.holding and is_backchannel(text):
            self._held_speech.clear()
            self._deciding = None
            log.info("call %s: not an interruption (%r); resuming", self.call.call_sid, text)
            await self._speaker.resume()
            return
        stt_ms = (time.perf_counter() - stt_started) * 1000.0
        self._take_turn(speech, (text, stt_ms))

    def _take_turn(self, speech: CallerSpeech, known: tuple[str, float] | None) -> None:
        """A real interruption of a held reply: it stops where the caller last heard it,
        and the caller's words are the next turn."""
        self._interrupt(speech.end_at)
        self._task = self._spawn(self._respond_to_speech(speech, None, known))
        self._watch_for_dead_air(time.perf_counter())

    async def _send_clear(self, onset_at: float) -> None:
        await self._transport.send_clear()
        clear_ms = (time.perf_counter() - onset_at) * 1000.0
        self._clear_ms.append(clear_ms)
        self._sink.barge_in(self.call, clear_ms)

    # --- replying ------------------------------------------------------------------------

    def _new_reply(self) -> SpokenReply:
        self._reply_ids += 1
        self._reply = SpokenReply(self._reply_ids, started_wall=time.time())
        return self._reply

    async def _heard(self, reply: SpokenReply) -> None:
        """Wait until the caller has heard the whole reply (its last mark came back)."""
        if self._playback.audible:
            limit = reply.sent_ms / 1000.0 + _PLAYBACK_MARGIN_S
            if not await self._playback.wait_idle(limit):
                log.info("call %s: marks not echoed; taking the reply as heard", self.call.call_sid)
                self._playback.clear()

    def _close_reply(self, *, interrupted: bool, latency: TurnLatency | None = None) -> None:
        """Put the reply in the history and the transcript, cut to what the caller heard
        when it was interrupted."""
        reply, self._reply = self._reply, None
        if reply is None or not reply.sentences:
            return
        text = reply.heard_text() if interrupted else reply.text
        self._asked = text or self._asked
        if reply.history_index is not None:
            self._history[reply.history_index].content = text or None
        elif text:
            self._history.append(ChatMessage("assistant", text))
        if text or not interrupted:
            self._emit("agent", text, reply.started_wall, interrupted, latency)

    async def _greet(self, text: str, started_at: float) -> None:
        reply = self._new_reply()
        audio = await self._phrases.get(text, self._agent.voice)  # cached: returns at once
        await self._play_phrase(reply, text, audio)
        if reply.first_audio_at is not None:
            self._sink.greeting_sent(self.call, (reply.first_audio_at - started_at) * 1000.0)
        await self._heard(reply)
        self._close_reply(interrupted=False)

    async def _play_phrase(self, reply: SpokenReply, text: str, audio: bytes) -> None:
        index = reply.add_sentence(text)
        reply.durations_ms[index] = len(audio) / 8.0
        await self._speaker.play(audio, reply, index, 0.0)

    async def _say(self, text: str) -> None:
        reply = self._new_reply()
        await self._play_phrase(reply, text, await self._phrases.get(text, self._agent.voice))
        await self._heard(reply)
        self._close_reply(interrupted=False)

    async def _respond_to_speech(
        self,
        speech: CallerSpeech,
        heard: asyncio.Task[str | None] | None = None,
        known: tuple[str, float] | None = None,
        early: EarlyReply | None = None,
    ) -> None:
        try:
            await self._answer_speech(speech, heard, known, early)
        finally:
            if early is not None:
                early.cancel()  # not taken (a failure, a cancel): its request stops too

    async def _answer_speech(
        self,
        speech: CallerSpeech,
        heard: asyncio.Task[str | None] | None,
        known: tuple[str, float] | None,
        early: EarlyReply | None,
    ) -> None:
        stt_started = time.perf_counter()
        text: str | None = None
        if known is not None:
            # Transcribed already, to tell an interruption from a backchannel.
            text = known[0]
            stt_started -= known[1] / 1000.0
        elif heard is not None:
            # Transcribed (or being transcribed) at the pause: the same audio, billed then.
            try:
                text = await heard
            except asyncio.CancelledError:
                heard.cancel()
                self._unheard.append(speech.pcm16)
                raise
        if text is None:
            # Billed by the audio sent, whatever came back (a cancelled request was sent).
            audio_s = len(speech.pcm16) / 8000.0
            try:
                transcript = await self._pipeline.stt.transcribe(
                    speech.pcm16, 8000, language=self._agent.language
                )
            except asyncio.CancelledError:
                self._stt_usage(audio_s)
                self._unheard.append(speech.pcm16)
                raise
            except ProviderError as exc:
                self._provider_failed(exc)
                await self._apologise()
                return
            self._stt_usage(audio_s)
            text = transcript.text.strip()
        stt_ms = (time.perf_counter() - stt_started) * 1000.0
        if not any(ch.isalnum() for ch in text):
            return  # a noise the VAD took for speech: nothing to answer
        if early is not None and (
            early.failed or not early.matches(speech.pause, text, len(self._history))
        ):
            early.cancel()  # asked with other words or another history: ask again
            early = None
        self._emit("caller", text, speech.onset_wall, False, None)
        self._history.append(ChatMessage("user", text))
        endpointing_ms = max(0.0, stt_started - speech.end_at) * 1000.0
        await self._reply_from_dialogue(_Timing(speech.end_at, endpointing_ms, stt_ms), early)

    async def _respond_to_text(self, text: str, at: float) -> None:
        self._emit("event", text, time.time(), False, None)
        self._history.append(ChatMessage("user", text))
        await self._reply_from_dialogue(_Timing(at, 0.0, 0.0))

    async def _reply_from_dialogue(self, timing: _Timing, early: EarlyReply | None = None) -> None:
        reply = self._new_reply()
        try:
            for _ in range(_MAX_TOOL_ROUNDS):
                calls = await self._one_round(reply, timing, early)
                early = None
                if not calls:
                    break
                if await self._run_tools(calls, reply, timing):
                    return
        except _Unanswered:
            self._reply = None  # nothing of it was said
            await self._apologise()
            return
        self._failed_turns = 0
        latency = timing.latency(reply.first_audio_at)
        await self._heard(reply)
        self._close_reply(interrupted=False, latency=latency)

    async def _one_round(
        self, reply: SpokenReply, timing: _Timing, early: EarlyReply | None = None
    ) -> list[ToolCall]:
        """Stream one model response, speaking each sentence as soon as it is complete.
        With ``early``, the response is the one already asked for at the pause."""
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaking = asyncio.create_task(self._speak_queue(sentences, reply, timing))
        calls: list[ToolCall] = []
        splitter = SentenceSplitter()
        timing.llm_started = time.perf_counter() if early is None else early.started
        source = self._dialogue.respond(self._history) if early is None else early.events()
        try:
            async with contextlib.aclosing(source) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        if timing.first_token_ms is None:
                            timing.first_token_ms = self._since(timing.llm_started)
                        for sentence in splitter.feed(event.text):
                            self._sentence_ready(sentences, sentence, timing)
                    elif isinstance(event, ToolCall):
                        calls.append(event)
                    else:
                        self._tokens(event)
            rest = splitter.flush()
            if rest:
                self._sentence_ready(sentences, rest, timing)
        except ProviderError as exc:
            self._provider_failed(exc)
            if not reply.sentences and sentences.empty():
                # Nothing said: the apology comes from cached audio, as TTS may be down too.
                sentences.put_nowait(None)
                await speaking
                if not reply.sentences:
                    raise _Unanswered from exc
        except BaseException:
            speaking.cancel()
            raise
        sentences.put_nowait(None)
        await speaking
        return calls

    def _sentence_ready(
        self, queue: asyncio.Queue[str | None], sentence: str, timing: _Timing
    ) -> None:
        self._first_sentence_now(timing)
        queue.put_nowait(sentence)

    def _first_sentence_now(self, timing: _Timing) -> None:
        if timing.first_sentence_ms is None:
            timing.first_sentence_ms = self._since(timing.llm_started)

    async def _speak_queue(
        self, queue: asyncio.Queue[str | None], reply: SpokenReply, timing: _Timing
    ) -> None:
        while (sentence := await queue.get()) is not None:
            await self._speak(sentence, reply, timing)

    async def _speak(self, sentence: str, reply: SpokenReply, timing: _Timing) -> None:
        """Speak one sentence; a TTS failure skips it (the caller never heard it)."""
        billed = True  # once asked for, even if the caller cuts it short
        try:
            first_byte_ms = await self._speaker.speak(
                self._pipeline.tts, sentence, reply, self._agent.voice
            )
        except ProviderError as exc:
            billed = False
            self._provider_failed(exc)
            return
        finally:
            if billed:
                self._usage("tts_characters", len(sentence), served_model("tts", self._tts_model))
        if timing.tts_first_byte_ms is None:
            timing.tts_first_byte_ms = first_byte_ms

    # --- tools ---------------------------------------------------------------------------

    async def _run_tools(self, calls: list[ToolCall], reply: SpokenReply, timing: _Timing) -> bool:
        """Carry out the model's tool calls; True when the call is over for the agent."""
        reply.history_index = len(self._history)
        self._history.append(ChatMessage("assistant", reply.text or None, tool_calls=calls))
        ending: tuple[str, str | None] | None = None
        for call in calls:
            # Every tool call gets its result at once, so the history stays valid for the
            # model even if the caller cuts the last words short and the call goes on.
            outcome = dispatch_tool(call.name, self._agent)
            ending = combine(ending, outcome)
            self._history.append(ChatMessage("tool", outcome.result, tool_call_id=call.id))
        if ending is None:
            return False
        reason, number = ending
        if not reply.sentences:
            # The model said nothing: the agent's own last words, and the call still ends
            # as decided if they cannot be spoken.
            goodbye = self._agent.render_speech(self._agent.goodbye, self.call.variables)
            self._first_sentence_now(timing)
            await self._speak(CONNECTING if number else goodbye, reply, timing)
        await self._last_words(reply, timing)
        self._end_reason = reason
        if number:
            await self._transport.transfer(number)
        else:
            await self._transport.hangup()
        return True

    async def _last_words(self, reply: SpokenReply, timing: _Timing) -> None:
        if reply.history_index is not None:
            self._history[reply.history_index].content = reply.text or None
        latency = timing.latency(reply.first_audio_at)
        await self._heard(reply)
        self._close_reply(interrupted=False, latency=latency)

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _since(started: float) -> float:
        return (time.perf_counter() - started) * 1000.0

    def _usage(self, meter: str, quantity: float, model: str) -> None:
        self._sink.usage(self.call, UsageEvent(meter, quantity, model))

    def _stt_usage(self, audio_s: float) -> None:
        # Under the model that heard it: the primary's, or a fallback's when it took over.
        self._usage("stt_seconds", audio_s, served_model("stt", self._stt_model))

    def _tokens(self, usage: TokenUsage) -> None:
        if usage.input_tokens:
            self._usage("llm_input_tokens", usage.input_tokens, usage.model)
        if usage.output_tokens:
            self._usage("llm_output_tokens", usage.output_tokens, usage.model)

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
        event = TurnEvent(
            seq=self._seq,
            role=role,
            text=text,
            started_at=datetime.fromtimestamp(started_wall, UTC),
            ended_at=datetime.now(UTC),
            interrupted=interrupted,
            latency=latency,
        )
        self._sink.turn(self.call, event)

    def _call_context(self) -> contextvars.Context:
        # Each task runs in a copy of the call's context (which names the call for the
        # logs) with the call's tenant set, for the per-tenant provider breakers.
        context = self._context.copy()
        context.run(current_tenant.set, self.call.tenant)
        return context

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(self._guard(work), context=self._call_context())

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
            log.exception("call %s: reply failed", self.call.call_sid)

    # --- recovery ------------------------------------------------------------------------

    def _watch_for_dead_air(self, due: float) -> None:
        if self._config.recovery_after_s <= 0 or self._task is None:
            return
        self._watch = self._spawn(self._keep_talking(self._task, due))
        self._background.add(self._watch)
        self._watch.add_done_callback(self._background.discard)

    async def _keep_talking(self, task: asyncio.Task[None], due: float) -> None:
        """While the reply due at `due` has made no sound: a recovery phrase after
        recovery_after_s, another after recovery_gap_s more of silence, and after one more
        gap the turn is given up (the apology, or the end of the call)."""
        config = self._config
        at = due + config.recovery_after_s
        for text in (HOLD_ON, STILL_WORKING):
            if not await self._silent_until(task, at):
                return
            at = time.perf_counter() + await self._filler(text) + config.recovery_gap_s
        if not await self._silent_until(task, at):
            return
        log.warning("call %s: no reply in time; giving the turn up", self.call.call_sid)
        self._watch = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._unheard.clear()  # the caller is asked to say it again
        self._sink.provider_error(self.call, "timeout")
        self._task = self._spawn(self._apologise())

    async def _silent_until(self, task: asyncio.Task[None], at: float) -> bool:
        """Wait until `at`; False as soon as the reply made a sound or finished."""
        while True:
            reply = self._reply
            if task.done() or self._ended or (reply is not None and reply.audio_sent):
                return False
            now = time.perf_counter()
            if now >= at:
                return True
            await asyncio.sleep(at - now)

    async def _filler(self, text: str) -> float:
        """Send a cached phrase in one message, outside any reply (not in the history);
        returns its length in seconds."""
        audio = await self._phrases.get(text, self._agent.voice)
        filler = SpokenReply(0, started_wall=time.time())
        filler.add_sentence(text)
        filler.durations_ms[0] = len(audio) / 8.0
        name = self._playback.sent(filler, 0, len(audio) / 8.0)
        await self._transport.send_audio(audio)
        await self._transport.send_mark(name)
        self._emit("event", f"[recovery] {text}", filler.started_wall, False, None)
        return len(audio) / 8000.0

    async def _apologise(self) -> None:
        """A turn lost to providers: ask again, or after too many, hand the call on."""
        self._failed_turns += 1
        if self._failed_turns < self._config.failed_turns_before_end:
            await self._say(APOLOGY)
            return
        number = self._agent.transfer_number
        self._end_reason = "provider-failure"
        log.warning(
            "call %s: %d turns lost to providers; ending", self.call.call_sid, self._failed_turns
        )
        await self._say(TROUBLE_TRANSFER if number else TROUBLE_GOODBYE)
        if number:
            await self._transport.transfer(number)
        else:
            await self._transport.hangup()

    # --- the call's own limits -----------------------------------------------------------

    async def _watch_call(self, started_at: float) -> None:
        """One timer per call: media that stops arriving ends the call; so does its
        maximum length, with a warning before it. Checked a few times a second."""
        config = self._config
        tick = min(1.0, config.media_timeout_s / 4 or 1.0)
        warn_at = end_at = None
        if config.max_call_s > 0:
            end_at = started_at + config.max_call_s
            if 0 < config.call_warning_s < config.max_call_s:
                warn_at = end_at - config.call_warning_s
        frames, heard_at = self._frames_in, time.perf_counter()
        while not self._ended:
            await asyncio.sleep(tick)
            now = time.perf_counter()
            if self._frames_in != frames:
                frames, heard_at = self._frames_in, now
            elif config.media_timeout_s > 0 and now - heard_at >= config.media_timeout_s:
                log.warning(
                    "call %s: no media for %.1f s; ending it", self.call.call_sid, now - heard_at
                )
                self._end_reason = "media-timeout"
                self._interrupt(now)
                # The socket may be dead without a close: end here, and hang up the line.
                self._background.discard(asyncio.current_task())  # type: ignore[arg-type]
                await self._transport.hangup()
                await self.end("media-timeout")
                return
            if warn_at is not None and now >= warn_at and self.state == "listening":
                warn_at = None
                self._task = self._spawn(self._say(TIME_WARNING))
            if end_at is not None and now >= end_at:
                log.info("call %s: maximum call length reached", self.call.call_sid)
                self._interrupt(now)
                self._end_reason = "max-duration"
                self._task = self._spawn(self._time_up())
                return

    async def _time_up(self) -> None:
        try:
            await self._say(TIME_UP)
        finally:
            # Cut short or not (the caller talking over it), the call ends here.
            await self._transport.hangup()


class _Unanswered(Exception):
    """The model failed before a word of its reply was said."""
