"""A call survives its worker's death.

The TwiML that connects a call's Media Stream is followed by ``<Redirect>`` to
``/twilio/resume``: when the stream ends, Twilio goes on to the next verb. If the agent
ended the call on purpose (its hang-up, a goodbye, a voicemail left) it marked the call
ended before closing the socket, and the resume webhook answers ``<Hangup/>``. If the
socket just dropped (the worker holding it was killed, its host died), the webhook,
served by any healthy worker, connects a new stream whose session picks the conversation
up from the stored turns, with a short apology instead of the greeting.

What a resumed session needs (the call's routing and prompt data, as the voice webhook
put it in the first token) and the "ended on purpose" marks live in Redis when it is
configured, so any worker or host can answer; in-process otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from voice_agent.providers.base import ChatMessage
from voice_agent.storage.calls import CallRepository

log = logging.getLogger(__name__)

RESUME_PATH = "/twilio/resume"
RESUME_PHRASE = "Sorry, I lost you for a second."
_DATA_KEY = "voice_agent:resume:data:"
_ENDED_KEY = "voice_agent:resume:ended:"
#: Longer than any call: the data is only needed while the call is up.
_TTL_S = 6 * 3600
_TIMEOUT_S = 1.0
#: Resumes of one call: a stream that keeps dropping must not loop for ever.
MAX_RESUMES = 5


class CallResume:
    def __init__(self, calls: CallRepository, redis: Any | None = None) -> None:
        self._calls = calls
        self._redis = redis
        self._data: dict[str, tuple[float, dict[str, str]]] = {}
        self._ended: dict[str, float] = {}

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - _TTL_S
        for sid in [s for s, (at, _) in self._data.items() if at < cutoff]:
            del self._data[sid]
        for sid in [s for s, at in self._ended.items() if at < cutoff]:
            del self._ended[sid]

    async def remember(self, call_sid: str, data: dict[str, str]) -> None:
        """What the call's stream carries, kept for a resume (the voice webhook)."""
        if self._redis is None:
            self._forget_old()
            self._data[call_sid] = (time.monotonic(), dict(data))
            return
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                await self._redis.set(_DATA_KEY + call_sid, orjson.dumps(data), ex=_TTL_S)
        except Exception as exc:
            # The call goes on; only a resume after a worker's death would be lost.
            log.warning("call %s: resume data not stored: %s", call_sid, exc)

    async def recall(self, call_sid: str) -> dict[str, str] | None:
        if self._redis is None:
            entry = self._data.get(call_sid)
            return dict(entry[1]) if entry is not None else None
        async with asyncio.timeout(_TIMEOUT_S):
            raw = await self._redis.get(_DATA_KEY + call_sid)
        return orjson.loads(raw) if raw is not None else None

    async def mark_ended(self, call_sid: str) -> None:
        """The agent ends this call on purpose: a resume must hang up. Awaited before the
        socket closes, since Twilio asks for the resume the moment it does."""
        if self._redis is None:
            self._forget_old()
            self._ended[call_sid] = time.monotonic()
            return
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                await self._redis.set(_ENDED_KEY + call_sid, b"1", ex=_TTL_S)
        except Exception as exc:
            # The resume then finds the stored end instead (when it was written in time).
            log.warning("call %s: end mark not stored: %s", call_sid, exc)

    async def ended_on_purpose(self, call_sid: str) -> bool:
        if self._redis is None:
            return call_sid in self._ended
        async with asyncio.timeout(_TIMEOUT_S):
            return bool(await self._redis.exists(_ENDED_KEY + call_sid))

    async def history(self, call_sid: str) -> tuple[list[ChatMessage], int, Any]:
        """The stored conversation as the dialogue's history, the last turn's seq, and when
        the call started."""
        call = await self._calls.get_call(call_sid)
        if call is None:
            return [], 0, None
        history: list[ChatMessage] = []
        for turn in call.turns:
            if turn.role == "caller" and turn.text:
                history.append(ChatMessage("user", turn.text))
            elif turn.role == "agent" and turn.text:
                history.append(ChatMessage("assistant", turn.text))
            elif turn.role == "event" and turn.text:
                history.append(ChatMessage("user", turn.text))
        last_seq = max((t.seq for t in call.turns), default=0)
        return history, last_seq, call.started_at
