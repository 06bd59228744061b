"""Which agent definition a tenant's call runs: its published version, else the template.

Calls look an agent up synchronously on their hot path, so every tenant's published
versions are held in memory (they are small) and replaced when one is published: at once
in the worker that published it, and through a Redis channel in the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from prompts import AgentDefinition, AgentDefinitionError, parse_agent_data
from voice_agent.storage.agents import AgentRepository, AgentVersion

log = logging.getLogger(__name__)


class AgentBook(dict[str, AgentDefinition]):
    """The templates by slug (as the plain agents mapping always was) plus each tenant's
    published agents. Code that knows the tenant asks ``lookup(tenant, slug)``."""

    def __init__(
        self, templates: Mapping[str, AgentDefinition], pipeline: str | None = None
    ) -> None:
        #: The pipeline this server's calls run on: every definition handed out carries
        #: that pipeline's TTS voice in ``voice`` (None: definitions as written).
        self.pipeline = pipeline
        super().__init__({slug: self.for_calls(agent) for slug, agent in templates.items()})
        self._published: dict[tuple[str, str], tuple[AgentDefinition, int]] = {}

    def for_calls(self, agent: AgentDefinition) -> AgentDefinition:
        """`agent` as this server's calls run it (its voice for this pipeline)."""
        return agent if self.pipeline is None else agent.for_pipeline(self.pipeline)

    def lookup(self, tenant: str, slug: str) -> AgentDefinition | None:
        found = self._published.get((tenant, slug))
        return found[0] if found is not None else self.get(slug)

    def resolve(self, tenant: str, slug: str) -> tuple[AgentDefinition | None, int | None]:
        """The definition and its version (None: the template runs)."""
        found = self._published.get((tenant, slug))
        if found is not None:
            return found
        return self.get(slug), None

    def versions(self) -> dict[tuple[str, str], int]:
        """(tenant, slug) -> the version this worker's calls run."""
        return {key: version for key, (_, version) in self._published.items()}

    def published(self) -> list[tuple[str, AgentDefinition, int]]:
        return [(tenant, agent, v) for (tenant, _), (agent, v) in self._published.items()]

    def install(
        self, version: AgentVersion, agent: AgentDefinition | None = None
    ) -> AgentDefinition | None:
        """Use `version` for its tenant's calls from now on (a stored version that no
        longer validates, say after a loader rule tightened, is logged and skipped)."""
        agent = agent or parse(version)
        if agent is None:
            return None
        agent = self.for_calls(agent)
        # The stored current version always wins, also when it is an older one (rollback).
        self._published[(version.tenant, version.slug)] = (agent, version.version)
        return agent

    async def load(self, repo: AgentRepository) -> None:
        for version in await repo.published():
            self.install(version)

    async def refresh(
        self,
        repo: AgentRepository,
        tenant: str,
        slug: str,
        before_use: Callable[[AgentDefinition], Awaitable[None]] | None = None,
    ) -> AgentDefinition | None:
        """Reload the tenant's current version; `before_use` (the greeting's synthesis)
        runs before calls are given it, so its first call finds the greeting ready."""
        versions = await repo.published(tenant, slug)
        agent = parse(versions[0]) if versions else None
        if agent is None:
            return None
        agent = self.for_calls(agent)
        if before_use is not None:
            await before_use(agent)
        return self.install(versions[0], agent)


def parse(version: AgentVersion) -> AgentDefinition | None:
    try:
        return parse_agent_data(version.data, f"{version.tenant}/{version.slug}")
    except AgentDefinitionError as exc:
        log.error("tenant agent v%d not used: %s", version.version, exc)
        return None


def lookup(agents: Mapping[str, AgentDefinition], tenant: str, slug: str) -> AgentDefinition | None:
    """A tenant's agent from whichever mapping a service was given (a plain mapping of
    templates in some tests)."""
    if isinstance(agents, AgentBook):
        return agents.lookup(tenant, slug)
    return agents.get(slug)


class AgentUpdates:
    """Tells the other workers that a tenant published; each reloads that agent and warms
    its greeting. Without Redis (one process) only the local callback runs."""

    def __init__(
        self,
        redis: Any | None,
        channel: str,
        on_update: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._on_update = on_update
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        if self._redis is None:
            return
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5.0)

    async def announce(self, tenant: str, slug: str) -> None:
        await self._on_update(tenant, slug)
        if self._redis is not None:
            try:
                await self._redis.publish(
                    self._channel, orjson.dumps({"tenant": tenant, "slug": slug})
                )
            except Exception:
                log.exception("could not tell other workers about %s/%s", tenant, slug)

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()  # type: ignore[union-attr]
                await pubsub.subscribe(self._channel)
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        note = orjson.loads(message["data"])
                        await self._on_update(str(note["tenant"]), str(note["slug"]))
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        log.warning("ignoring a malformed agent update on %s", self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("agent updates: Redis connection lost; resubscribing")
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
