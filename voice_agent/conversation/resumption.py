"""The part of a call's session that lets it go on from a stream that dropped (#15), shared
by the cascade's CallSession and the realtime pipeline's RealtimeCallSession, so both keep
the same contract: the stored turns as the history, turn numbers following theirs, a short
apology instead of the greeting, and the call's stored start."""

from __future__ import annotations

from datetime import UTC, datetime

from prompts import AgentDefinition
from voice_agent.conversation.ports import CallInfo
from voice_agent.providers.base import ChatMessage


class Resumable:
    """Mixed into a session that sets ``call``, ``_agent``, ``_history`` and ``_seq``."""

    call: CallInfo
    _agent: AgentDefinition
    _history: list[ChatMessage]
    _seq: int
    # Class-level defaults: a session that is never resumed need not set them.
    _resume_phrase: str | None = None
    _resumed_started: datetime | None = None

    def resume_from(
        self, history: list[ChatMessage], last_seq: int, phrase: str, started: datetime | None
    ) -> None:
        """Before start: the call goes on from a stream that dropped (its worker died). The
        stored turns are the history, the turn numbers follow theirs, and ``phrase`` (a
        short apology) is said instead of the greeting."""
        self._history = list(history)
        self._seq = last_seq
        self._resume_phrase = phrase
        self._resumed_started = started

    def _opening(self) -> tuple[str, datetime]:
        """What the call says first and the start it is stored with. A resumed call keeps
        its stored start: a new one would move it (and its duration) to the resume."""
        if self._resume_phrase:
            return self._resume_phrase, self._resumed_started or datetime.now(UTC)
        greeting = self._agent.greeting_for(self.call.variables)
        return self._agent.render_speech(greeting, self.call.variables), datetime.now(UTC)
