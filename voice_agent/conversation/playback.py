"""What the caller has heard, from the marks Twilio echoes, not from clocks."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

#: Speaking rate used to guess a sentence's length while its audio is still being made.
_CHARS_PER_SECOND = 15.0


@dataclass(slots=True)
class SpokenReply:
    """One agent reply as it is spoken: its sentences and how far playback got."""

    id: int
    sentences: list[str] = field(default_factory=list)
    #: Audio length of each sentence once fully synthesised.
    durations_ms: list[float | None] = field(default_factory=list)
    #: (sentence index, ms into it) of the last mark echoed before any clear.
    heard: tuple[int, float] = (-1, 0.0)
    cancelled: bool = False
    audio_sent: bool = False
    #: time.time() when the reply began, perf_counter() when its first audio left.
    started_wall: float = 0.0
    first_audio_at: float | None = None
    #: Where the reply sits in the dialogue history once it is there.
    history_index: int | None = None
    #: Audio ms sent in all; bounds how long playback can take.
    sent_ms: float = 0.0

    def add_sentence(self, text: str) -> int:
        self.sentences.append(text)
        self.durations_ms.append(None)
        return len(self.sentences) - 1

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def heard_text(self) -> str:
        """The reply cut at the last word the caller heard."""
        index, ms = self.heard
        if index < 0:
            return ""
        whole = self.sentences[:index]
        sentence = self.sentences[index]
        total = self.durations_ms[index] or len(sentence) / _CHARS_PER_SECOND * 1000.0
        fraction = min(1.0, ms / total) if total > 0 else 1.0
        if fraction >= 0.98:
            whole.append(sentence)
        else:
            cut = int(len(sentence) * fraction)
            partial = sentence[:cut]
            if not sentence[cut].isspace():
                # The cut may fall inside a word: keep only the words before it.
                partial = partial.rsplit(" ", 1)[0] if " " in partial else ""
            partial = partial.rstrip()
            if partial:
                whole.append(partial + "…")
        return " ".join(whole)


@dataclass(slots=True)
class _Mark:
    seq: int
    reply: SpokenReply
    sentence: int
    sentence_ms: float
    #: The audio this mark closes (the chunk already made for the line, kept by reference
    #: until it is echoed): what a held reply replays on resume.
    audio: bytes = b""


@dataclass(slots=True)
class HeldAudio:
    """A piece of reply audio not yet heard when the line was cleared for a possible
    interruption; sent again, with a new mark, if the interruption was not one."""

    reply: SpokenReply
    sentence: int
    sentence_ms: float
    audio: bytes


class Playback:
    """The FIFO of marks sent and not yet echoed. Empty means the caller hears silence.

    While *held* (``hold``), the line has been cleared but the reply is not given up: the
    unheard audio, and any the reply makes meanwhile, wait in order in ``held`` until
    ``take_held`` (resume) or ``clear`` (a real interruption)."""

    __slots__ = ("_held", "_holding", "_idle", "_next", "_pending")

    def __init__(self) -> None:
        self._pending: deque[_Mark] = deque()
        self._held: deque[HeldAudio] = deque()
        self._holding = False
        self._next = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def audible(self) -> bool:
        return bool(self._pending)

    @property
    def holding(self) -> bool:
        return self._holding

    def sent(
        self, reply: SpokenReply, sentence: int, sentence_ms: float, audio: bytes = b""
    ) -> str:
        """Record audio sent up to `sentence_ms` into `sentence`; returns the mark's name."""
        self._next += 1
        self._pending.append(_Mark(self._next, reply, sentence, sentence_ms, audio))
        self._idle.clear()
        return str(self._next)

    def hold(self) -> float:
        """The line is being cleared, the reply kept: every unechoed piece moves to the
        held queue (its marks, when Twilio returns them for the clear, then match nothing).
        Playback does not count as idle until the hold ends. Returns the ms held."""
        held_ms = 0.0
        while self._pending:
            mark = self._pending.popleft()
            if mark.audio and not mark.reply.cancelled:
                self._held.append(
                    HeldAudio(mark.reply, mark.sentence, mark.sentence_ms, mark.audio)
                )
                held_ms += len(mark.audio) / 8.0
        self._holding = True
        self._idle.clear()
        return held_ms

    def keep(self, reply: SpokenReply, sentence: int, sentence_ms: float, audio: bytes) -> None:
        """Audio the reply made while held: queued behind the held pieces, not sent."""
        self._held.append(HeldAudio(reply, sentence, sentence_ms, audio))

    def take_held(self) -> HeldAudio | None:
        """The next held piece to send again (resume), or None, which ends the hold: new
        audio goes straight to the line again. Called in a loop, so pieces the reply adds
        while earlier ones are being sent keep their order."""
        if self._held:
            return self._held.popleft()
        self._holding = False
        if not self._pending:
            self._idle.set()
        return None

    def echoed(self, name: str) -> None:
        """Twilio reached the mark `name`: everything queued before it has played."""
        try:
            seq = int(name)
        except ValueError:
            return
        # Marks from before a clear come back too; their numbers are below every pending one.
        while self._pending and self._pending[0].seq <= seq:
            mark = self._pending.popleft()
            if not mark.reply.cancelled:
                mark.reply.heard = (mark.sentence, mark.sentence_ms)
        if not self._pending and not self._holding:
            self._idle.set()

    def clear(self) -> None:
        """Nothing queued at Twilio will be heard, and nothing held will be resumed."""
        self._pending.clear()
        self._held.clear()
        self._holding = False
        self._idle.set()

    async def wait_idle(self, limit_s: float) -> bool:
        """Wait until everything sent has played; False after `limit_s` seconds."""
        try:
            async with asyncio.timeout(limit_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
