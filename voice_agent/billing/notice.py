"""A suspended tenant's inbound caller hears one polite sentence in the tenant's own agent
voice, and the call ends. The call is recorded like any other (and its seconds metered by
Twilio's status callback): suspension loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from prompts import AgentDefinition
from voice_agent.call_tap import CallTap
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent

SUSPENDED_MESSAGE = (
    "Thank you for calling. We are not able to take calls on this line right now."
    " Please try again later. Goodbye."
)
END_REASON = "tenant-suspended"


class SuspendedNotice:
    """The StreamHandler in place of a conversation: says the notice, then hangs up."""

    def __init__(
        self, call: CallInfo, agent: AgentDefinition, phrases: PhraseCache, tap: CallTap
    ) -> None:
        self._call = call
        self._agent = agent
        self._phrases = phrases
        self._tap = tap
        self._task: asyncio.Task[None] | None = None
        self._ended = False

    def on_audio(self, ulaw: bytes) -> None:
        pass  # nobody listens

    def on_mark(self, name: str) -> None:
        pass  # the tap takes the notice's own mark

    def on_dtmf(self, digit: str) -> None:
        pass

    async def start(self, started_at: float | None = None) -> None:
        now = datetime.now(UTC)
        self._tap.call_started(self._call, now)
        self._tap.turn(self._call, TurnEvent(1, "agent", SUSPENDED_MESSAGE, now))
        self._task = asyncio.create_task(self._say())

    async def _say(self) -> None:
        audio = await self._phrases.get(SUSPENDED_MESSAGE, self._agent.voice)
        await self._tap.leave_message(audio)

    async def end(self, reason: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._tap.call_ended(self._call, CallEndedEvent(datetime.now(UTC), END_REASON))
