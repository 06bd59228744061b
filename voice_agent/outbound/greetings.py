"""Personal greetings synthesised while the phone rings.

The lead's greeting ("Hi Maria, ...") differs per call, so the shared phrase cache cannot
hold it ahead of time. The dialer starts its synthesis when it places the call; ringing
takes seconds, synthesis far less, so by the time the callee answers the audio is ready
and the greeting leaves as fast as a cached one. Kept apart from the shared cache so a
burst of leads never evicts the agents' fixed phrases.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from voice_agent.conversation.phrases import PhraseCache

log = logging.getLogger(__name__)

#: A call rings at most 60 s (Twilio's default Timeout); after that nobody will ask.
_TTL_S = 180.0


@dataclass(slots=True)
class _Prepared:
    text: str
    voice: str | None
    audio: asyncio.Future[bytes]
    made_at: float


class CallPhrases:
    """The shared phrase cache with one call's personal greeting in front of it."""

    def __init__(self, shared: PhraseCache, prepared: _Prepared) -> None:
        self._shared = shared
        self._prepared = prepared

    async def get(self, text: str, voice: str | None = None) -> bytes:
        prepared = self._prepared
        if text == prepared.text and voice == prepared.voice:
            try:
                return await asyncio.shield(prepared.audio)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the TTS failed while ringing: try once more now
                log.warning("prepared greeting failed (%s); synthesising it now", exc)
        return await self._shared.get(text, voice)


class GreetingStore:
    """Greeting audio being made for calls not yet answered, keyed by scheduled-call id."""

    def __init__(
        self,
        synthesiser: PhraseCache,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1000,
    ) -> None:
        self._synthesiser = synthesiser
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, _Prepared] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def prepare(self, key: str, text: str, voice: str | None) -> None:
        """Start synthesising ``text`` for the call ``key`` (returns at once)."""
        self._prune()
        audio = asyncio.ensure_future(self._synthesiser.get(text, voice))
        # Retrieved later or never: either way its failure must not be "never retrieved".
        audio.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._entries[key] = _Prepared(text, voice, audio, self._clock())

    @property
    def synthesiser(self) -> PhraseCache:
        return self._synthesiser

    def warm(self, text: str, voice: str | None) -> None:
        """Start making a phrase this call may need later (its voicemail message)."""
        made = asyncio.ensure_future(self._synthesiser.get(text, voice))
        made.add_done_callback(lambda f: f.cancelled() or f.exception())

    def phrases_for(self, key: str, shared: PhraseCache) -> PhraseCache | CallPhrases:
        """The phrase source for the answered call ``key``: its prepared greeting first."""
        prepared = self._entries.pop(key, None) if key else None
        return shared if prepared is None else CallPhrases(shared, prepared)

    def _prune(self) -> None:
        limit = self._clock() - _TTL_S
        for key in [k for k, p in self._entries.items() if p.made_at < limit]:
            self._entries.pop(key).audio.cancel()
        while len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries))).audio.cancel()

    def close(self) -> None:
        for prepared in self._entries.values():
            prepared.audio.cancel()
        self._entries.clear()
