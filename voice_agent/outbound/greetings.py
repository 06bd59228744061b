"""Personal greetings synthesised while the phone rings.

The lead's greeting ("Hi Maria, ...") differs per call, so the shared phrase cache cannot
hold it ahead of time. The dialer starts its synthesis when it places the call; ringing
takes seconds, synthesis far less, so by the time the callee answers the audio is ready
and the greeting leaves as fast as a cached one. Kept apart from the shared cache so a
burst of leads never evicts the agents' fixed phrases.

With several workers, Twilio's answer may reach a worker other than the one that placed
the call: with Redis, the finished audio is also put there for whichever worker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import redis.asyncio

from voice_agent.conversation.phrases import PhraseCache

log = logging.getLogger(__name__)

#: A call rings at most 60 s (Twilio's default Timeout); after that nobody will ask.
_TTL_S = 180.0
#: The answering worker waits this long for Redis before synthesising the greeting itself.
_FETCH_TIMEOUT_S = 0.3

#: Finds the call's greeting audio for (text, voice); None when it has none for them.
Finder = Callable[[str, str | None], Awaitable[bytes | None]]


@dataclass(slots=True)
class _Prepared:
    text: str
    voice: str | None
    audio: asyncio.Future[bytes]
    made_at: float


class CallPhrases:
    """The shared phrase cache with one call's personal greeting in front of it."""

    def __init__(self, shared: PhraseCache, find: Finder) -> None:
        self._shared = shared
        self._find = find

    async def get(self, text: str, voice: str | None = None) -> bytes:
        audio = await self._find(text, voice)
        return audio if audio is not None else await self._shared.get(text, voice)


def _local(prepared: _Prepared) -> Finder:
    async def find(text: str, voice: str | None) -> bytes | None:
        if text != prepared.text or voice != prepared.voice:
            return None
        try:
            return await asyncio.shield(prepared.audio)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the TTS failed while ringing: try once more now
            log.warning("prepared greeting failed (%s); synthesising it now", exc)
            return None

    return find


def _remote(fetching: asyncio.Future[tuple[str, str | None, bytes] | None]) -> Finder:
    async def find(text: str, voice: str | None) -> bytes | None:
        # Asked for every phrase of the call: wait for Redis once, at the greeting.
        if not fetching.done():
            try:
                async with asyncio.timeout(_FETCH_TIMEOUT_S):
                    await asyncio.shield(fetching)
            except TimeoutError:
                log.warning("prepared greeting: Redis did not answer; synthesising it now")
                fetching.cancel()
            except Exception as exc:
                log.warning("prepared greeting not fetched (%s); synthesising it now", exc)
        if fetching.cancelled() or fetching.exception() is not None:
            return None
        found = fetching.result()
        return found[2] if found is not None and found[:2] == (text, voice) else None

    return find


class SharedGreetings:
    """Finished greeting audio in Redis, taken once by whichever worker the call reaches."""

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "va:greeting:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def put(self, key: str, text: str, voice: str | None, audio: bytes) -> None:
        header = orjson.dumps([text, voice])
        blob = len(header).to_bytes(4, "big") + header + audio
        await self._redis.set(self._prefix + key, blob, px=int(_TTL_S * 1000))

    async def drop(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def take(self, key: str) -> tuple[str, str | None, bytes] | None:
        blob = await self._redis.getdel(self._prefix + key)
        if blob is None:
            return None
        size = int.from_bytes(blob[:4], "big")
        text, voice = orjson.loads(blob[4 : 4 + size])
        return text, voice, blob[4 + size :]


class GreetingStore:
    """Greeting audio being made for calls not yet answered, keyed by scheduled-call id."""

    def __init__(
        self,
        synthesiser: PhraseCache,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1000,
        shared: SharedGreetings | None = None,
    ) -> None:
        self._synthesiser = synthesiser
        self._clock = clock
        self._max = max_entries
        self._shared = shared
        self._entries: dict[str, _Prepared] = {}
        self._sharing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def prepare(self, key: str, text: str, voice: str | None) -> None:
        """Start synthesising ``text`` for the call ``key`` (returns at once)."""
        self._prune()
        audio = asyncio.ensure_future(self._synthesiser.get(text, voice))
        # Retrieved later or never: either way its failure must not be "never retrieved".
        audio.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._shared is not None:
            audio.add_done_callback(lambda f: self._share(key, text, voice, f))
        self._entries[key] = _Prepared(text, voice, audio, self._clock())

    def _share(self, key: str, text: str, voice: str | None, audio: asyncio.Future[bytes]) -> None:
        if self._shared is None or audio.cancelled() or audio.exception() is not None:
            return
        if key in self._entries:  # not answered here yet: the answer may reach another worker
            put = self._shared.put(key, text, voice, audio.result())
            self._background(put, f"prepared greeting for {key} not shared")

    def _background(self, work: Awaitable[None], failure: str) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:  # Redis is a shortcut here; the call goes on without it
                log.warning("%s (%s)", failure, exc)

        task = asyncio.ensure_future(run())
        self._sharing.add(task)
        task.add_done_callback(self._sharing.discard)

    @property
    def synthesiser(self) -> PhraseCache:
        return self._synthesiser

    def warm(self, text: str, voice: str | None) -> None:
        """Start making a phrase this call may need later (its voicemail message)."""
        made = asyncio.ensure_future(self._synthesiser.get(text, voice))
        made.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def settle(self, key: str, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for the greeting being made here for ``key``. False (and
        the greeting let go) when it is not ready by then or failed; True when it is
        ready, or is not being made here (another worker's, fetched by `phrases_for`)."""
        prepared = self._entries.get(key)
        if prepared is None:
            return True
        if not prepared.audio.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await asyncio.wait([prepared.audio])
        audio = prepared.audio
        if audio.done() and not audio.cancelled() and audio.exception() is None:
            return True
        # Left to finish, not cancelled: the synthesiser caches it for this caller's next call.
        self._entries.pop(key, None)
        return False

    def phrases_for(self, key: str, shared: PhraseCache) -> PhraseCache | CallPhrases:
        """The phrase source for the answered call ``key``: its prepared greeting first,
        from this worker or else from the one that placed the call (through Redis)."""
        if not key:
            return shared
        prepared = self._entries.pop(key, None)
        if prepared is not None:
            if self._shared is not None:  # answered here: no other worker needs the copy
                self._background(self._shared.drop(key), f"shared greeting {key} not dropped")
            return CallPhrases(shared, _local(prepared))
        if self._shared is None:
            return shared
        fetching = asyncio.ensure_future(self._shared.take(key))
        fetching.add_done_callback(lambda f: f.cancelled() or f.exception())
        return CallPhrases(shared, _remote(fetching))

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
        for sharing in self._sharing:
            sharing.cancel()
