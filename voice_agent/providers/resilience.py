"""Retries, circuit breakers and fallback providers around each pipeline stage.

A stage here is a list of providers in order of preference (the primary, then an optional
fallback on a second OpenAI-compatible base URL). Each request goes to the first provider
whose breaker (per provider and tenant) is closed; a retryable failure (timeout, 5xx, a
broken or stalled stream, a 429 whose Retry-After is short) is asked again once on the
same provider, then on the next one. A stalled or broken stream is abandoned, and its
connection with it, so the retry goes out on a fresh connection.

A stream that breaks after it has yielded is re-asked, and the retry's output is skipped
up to what was already passed on: the caller hears the rest of the sentence, not its
start twice. (A model that answers differently the second time makes the join imperfect;
the caller still hears a whole reply.)

The session never sees any of this except as a slower answer or, when every provider is
out, one ProviderError, which it answers with its recovery phrases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from prompts import AgentDefinition
from voice_agent.providers.base import (
    ChatMessage,
    Dialogue,
    DialogueEngine,
    DialogueEvent,
    ProviderError,
    SpeechToText,
    TextDelta,
    TextToSpeech,
    Transcript,
)

log = logging.getLogger(__name__)

#: The tenant whose call is asking: set by the session for its tasks, so one tenant's
#: misbehaving traffic (say, its own API key over quota) opens only its own breakers.
current_tenant: ContextVar[str] = ContextVar("provider_tenant", default="")

#: The model a stage last asked for this task (its provider's `usage_model`): the caller's
#: audio seconds and the reply's characters are metered under the name of the provider that
#: did the work, so a fallback's or the offline models' turns are not billed as the
#: primary's. A context variable, as one pipeline serves every call at once.
_served: dict[str, ContextVar[str]] = {
    stage: ContextVar(f"served_{stage}", default="") for stage in ("stt", "llm", "tts")
}


def served_model(stage: str, default: str) -> str:
    """The model `stage` last asked in this task (`default` if none yet, or it has none)."""
    return _served[stage].get() or default


#: What a stage asks (a SpeechToText, a Dialogue, a TextToSpeech) and what it streams.
_Provider = TypeVar("_Provider")
_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Attempts per provider (the first try included).
    attempts: int = 2
    #: A 429 asking for a longer wait than this skips to the next provider.
    max_retry_after_s: float = 1.0
    #: Consecutive failures that open a breaker, and how long it stays open.
    breaker_failures: int = 3
    breaker_open_s: float = 30.0


class CircuitBreaker:
    """Closed: requests go through. Open (after `failures` in a row): requests are refused
    at once for `open_s`, so calls stop waiting out timeouts on a provider that is down.
    Then half-open: one request is let through, and its outcome closes or re-opens it."""

    __slots__ = ("_failures", "_limit", "_open_s", "_opened_at", "_trial", "opened")

    def __init__(self, failures: int, open_s: float) -> None:
        self._limit = failures
        self._open_s = open_s
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        #: Times this breaker opened, for the operator.
        self.opened = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at >= self._open_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> bool:
        """Count a failure; True when this one opened the breaker."""
        self._failures += 1
        if self._opened_at is not None:
            # The half-open trial failed: open for another period.
            self._opened_at = time.monotonic()
            self._trial = False
            return False
        if self._failures >= self._limit:
            self._opened_at = time.monotonic()
            self.opened += 1
            return True
        return False


class Breakers:
    """Every breaker of a process, by (provider, tenant); bounded, the oldest dropped."""

    def __init__(self, policy: RetryPolicy, max_entries: int = 10_000) -> None:
        self._policy = policy
        self._max = max_entries
        self._breakers: OrderedDict[tuple[str, str], CircuitBreaker] = OrderedDict()

    def get(self, provider: str, tenant: str) -> CircuitBreaker:
        key = (provider, tenant)
        breaker = self._breakers.get(key)
        if breaker is None:
            if len(self._breakers) >= self._max:
                self._breakers.popitem(last=False)
            breaker = CircuitBreaker(self._policy.breaker_failures, self._policy.breaker_open_s)
            self._breakers[key] = breaker
        return breaker

    def states(self) -> dict[tuple[str, str], str]:
        return {key: breaker.state for key, breaker in self._breakers.items()}


@dataclass(slots=True)
class StageStats:
    """What one stage went through, for /metrics and the tests."""

    retries: int = 0
    fallbacks: int = 0
    refused_open: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class _Stage:
    """The shared part: pick a provider, count, decide whether to ask again."""

    def __init__(
        self,
        stage: str,
        names: Sequence[str],
        breakers: Breakers,
        policy: RetryPolicy,
    ) -> None:
        self._stage = stage
        self._names = list(names)
        self._breakers = breakers
        self._policy = policy
        self._served = _served[stage]
        self.stats = StageStats()

    def _breaker(self, index: int) -> CircuitBreaker:
        return self._breakers.get(f"{self._stage}:{self._names[index]}", current_tenant.get())

    def _failed(self, index: int, exc: ProviderError) -> None:
        name = self._names[index]
        self.stats.failures[name] = self.stats.failures.get(name, 0) + 1
        if self._breaker(index).failure():
            log.warning(
                "provider %s %s: circuit open for tenant %r after repeated failures (%s)",
                self._stage,
                name,
                current_tenant.get(),
                exc,
            )

    async def _may_retry(self, index: int, exc: ProviderError, attempt: int) -> bool:
        """After a failed attempt: wait as asked (if briefly) and say whether to ask the
        same provider again; False moves on to the next provider."""
        if not exc.retryable or attempt + 1 >= self._policy.attempts:
            return False
        if self._breaker(index).state != "closed":
            return False  # that failure opened it
        wait = exc.retry_after or 0.0
        if wait > self._policy.max_retry_after_s:
            return False
        if wait:
            await asyncio.sleep(wait)
        self.stats.retries += 1
        return True

    def _open(self, index: int) -> bool:
        if self._breaker(index).allow():
            if index:
                self.stats.fallbacks += 1
            return True
        self.stats.refused_open += 1
        return False

    def _exhausted(self, last: ProviderError | None) -> ProviderError:
        if last is not None:
            return last
        return ProviderError(self._stage, "every provider's circuit is open", retryable=False)

    async def _stream(
        self,
        providers: Sequence[_Provider],
        ask: Callable[[_Provider], AsyncGenerator[_Item, None]],
        size: Callable[[_Item], int | None],
        tail: Callable[[_Item, int], _Item],
    ) -> AsyncGenerator[_Item, None]:
        """The one retry loop of every stage: ask each provider in turn (behind its
        breaker), each up to `attempts` times, and pass on what it streams. A re-asked
        stream's output is skipped up to what was already passed on, counted by `size`
        (None: an item that is not part of the joined flow, always passed on) and cut by
        `tail`, so the caller hears the rest of a reply, not its start twice."""
        passed = 0
        last: ProviderError | None = None
        for index, provider in enumerate(providers):
            if not self._open(index):
                continue
            attempt = 0
            self._served.set(getattr(provider, "usage_model", ""))
            while True:
                skip = passed
                try:
                    async with contextlib.aclosing(ask(provider)) as stream:
                        async for item in stream:
                            length = size(item)
                            if length is not None:
                                if skip:
                                    if length <= skip:
                                        skip -= length
                                        continue
                                    item, length, skip = tail(item, skip), length - skip, 0
                                passed += length
                            yield item
                except ProviderError as exc:
                    # Kept without its traceback, whose frames include this one.
                    last = exc.with_traceback(None)
                    self._failed(index, exc)
                    if await self._may_retry(index, exc, attempt):
                        attempt += 1
                        continue
                    break
                self._breaker(index).success()
                return
        error, last = self._exhausted(last), None
        try:
            raise error
        finally:
            # The error's traceback holds this frame: no local may hold the error.
            del error


class ResilientSpeechToText(_Stage):
    def __init__(
        self,
        providers: Sequence[tuple[str, SpeechToText]],
        breakers: Breakers,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__("stt", [n for n, _ in providers], breakers, policy or RetryPolicy())
        self._providers = [p for _, p in providers]
        self.usage_model: str = getattr(self._providers[0], "usage_model", "")

    @property
    def providers(self) -> list[SpeechToText]:
        return list(self._providers)

    async def transcribe(
        self, pcm16: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        async def once(provider: SpeechToText) -> AsyncGenerator[Transcript, None]:
            yield await provider.transcribe(pcm16, sample_rate, language=language)

        # Read to its end: the provider's breaker is closed again only after its stream.
        results = [r async for r in self._stream(self._providers, once, _unsized, _uncut)]
        return results[0]

    async def aclose(self) -> None:
        await _close_all(self._providers)


class ResilientDialogue(_Stage):
    def __init__(
        self,
        dialogues: Sequence[tuple[str, Dialogue]],
        breakers: Breakers,
        policy: RetryPolicy,
    ) -> None:
        super().__init__("llm", [n for n, _ in dialogues], breakers, policy)
        self._dialogues = [d for _, d in dialogues]

    def respond(self, history: list[ChatMessage]) -> AsyncGenerator[DialogueEvent, None]:
        return self._stream(
            self._dialogues, lambda dialogue: dialogue.respond(history), _text_size, _text_tail
        )


class ResilientDialogueEngine:
    def __init__(
        self,
        engines: Sequence[tuple[str, DialogueEngine]],
        breakers: Breakers,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._engines = list(engines)
        self._breakers = breakers
        self._policy = policy or RetryPolicy()
        #: Every call's dialogue stats add up here.
        self.stats = StageStats()

    @property
    def providers(self) -> list[DialogueEngine]:
        return [engine for _, engine in self._engines]

    def start(self, agent: AgentDefinition, variables: Mapping[str, str]) -> ResilientDialogue:
        dialogue = ResilientDialogue(
            [(name, engine.start(agent, variables)) for name, engine in self._engines],
            self._breakers,
            self._policy,
        )
        dialogue.stats = self.stats
        return dialogue

    async def aclose(self) -> None:
        await _close_all([engine for _, engine in self._engines])


class ResilientTextToSpeech(_Stage):
    def __init__(
        self,
        providers: Sequence[tuple[str, TextToSpeech]],
        breakers: Breakers,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__("tts", [n for n, _ in providers], breakers, policy or RetryPolicy())
        self._providers = [p for _, p in providers]
        rates = {p.sample_rate for p in self._providers}
        if len(rates) != 1:
            # A re-asked stream is joined to what was sent: one sample rate throughout.
            raise ValueError(f"TTS providers must share one sample rate, not {sorted(rates)}")
        self.sample_rate = rates.pop()
        self.usage_model: str = getattr(self._providers[0], "usage_model", "")

    @property
    def providers(self) -> list[TextToSpeech]:
        return list(self._providers)

    def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        return self._stream(
            self._providers, lambda provider: provider.synthesize(text, voice), len, _bytes_tail
        )

    async def aclose(self) -> None:
        await _close_all(self._providers)


def _unsized(item: object) -> int | None:
    return None


def _uncut(item: _Item, skip: int) -> _Item:
    return item


def _text_size(event: DialogueEvent) -> int | None:
    # Only the text is passed on in pieces; tool calls and usage are whole events.
    return len(event.text) if isinstance(event, TextDelta) else None


def _text_tail(event: DialogueEvent, skip: int) -> DialogueEvent:
    assert isinstance(event, TextDelta)
    return TextDelta(event.text[skip:])


def _bytes_tail(piece: bytes, skip: int) -> bytes:
    return piece[skip:]


async def _close_all(parts: Sequence[object]) -> None:
    for part in parts:
        close = getattr(part, "aclose", None)
        if close is not None:
            await close()
