"""Live call events (started, turn, ended) fanned out to whoever watches: the dashboard's
server-sent event streams.

Publishing is one ``put_nowait`` into an outbox, safe on the audio path; a pump task does
the rest. In-process, the pump hands each event to this worker's subscribers. With Redis,
it publishes to a channel every worker listens on, and each worker's listener hands what
arrives to its own subscribers, so a dashboard on worker A sees a call on worker B.

Nothing here ever waits on a slow watcher: a full subscriber queue drops the event for that
subscriber alone and marks it lagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

log = logging.getLogger(__name__)

Event = dict[str, Any]
CHANNEL = "voice_agent:call_events"
_OUTBOX_SIZE = 10_000
_RECONNECT_S = 1.0


class Subscription:
    """One watcher's queue. Iterate it for events; ``lagged`` says some were dropped."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.lagged = False

    def offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    async def get(self) -> Event:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()


class Bus:
    """In-process fan-out; the base of the Redis bus too."""

    def __init__(self) -> None:
        self._outbox: asyncio.Queue[Event] = asyncio.Queue(_OUTBOX_SIZE)
        self._subscribers: set[Subscription] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def publish(self, event: Event) -> None:
        """Never blocks and never raises: a full outbox drops the event (and counts it)."""
        try:
            self._outbox.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    @contextlib.contextmanager
    def subscribe(self, maxsize: int = 1000) -> Any:
        subscription = Subscription(maxsize)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._pump(), name="bus-pump"))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: closing a pub/sub connection to a wedged Redis must not hang shutdown.
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks.clear()

    def _deliver(self, event: Event) -> None:
        for subscription in tuple(self._subscribers):
            subscription.offer(event)

    async def _pump(self) -> None:
        while True:
            self._deliver(await self._outbox.get())


class RedisBus(Bus):
    """Events cross workers and hosts through Redis pub/sub."""

    def __init__(
        self, redis: Any, channel: str = CHANNEL, timeout_s: float = 2.0, health: Any = None
    ) -> None:
        super().__init__()
        self._redis = redis
        #: Told of failures and recoveries (voice_agent.redis_health), when given.
        self._health = health
        self._channel = channel
        self._timeout_s = timeout_s
        self._subscribed_event = asyncio.Event()

    async def start(self) -> None:
        # Subscribing happens in the background: a server whose Redis is down still starts
        # (and says so on /readyz); the listener keeps trying until Redis answers.
        self._tasks.append(asyncio.create_task(self._pump(), name="bus-pump"))
        self._tasks.append(asyncio.create_task(self._listen(), name="bus-listen"))

    async def wait_subscribed(self, timeout_s: float = 5.0) -> None:
        """Until this worker's listener is subscribed (events published after are seen)."""
        async with asyncio.timeout(timeout_s):
            await self._subscribed_event.wait()

    async def _subscribed(self) -> Any:
        """A pub/sub connection whose subscription Redis has confirmed, so nothing published
        after start() returns is missed."""
        pubsub = self._redis.pubsub()
        try:
            async with asyncio.timeout(self._timeout_s):
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=self._timeout_s)
                    if message is not None and message["type"] == "subscribe":
                        return pubsub
        except BaseException:
            await pubsub.aclose()
            raise

    async def _pump(self) -> None:
        while True:
            event = await self._outbox.get()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._redis.publish(self._channel, orjson.dumps(event))
            except Exception as exc:
                # Live view only: the call itself and its stored transcript are unaffected.
                self.dropped += 1
                if self._health is not None:
                    self._health.failed("live events", exc)  # one warning per outage
                else:
                    log.warning("live event not published: %s", exc or type(exc).__name__)
            else:
                if self._health is not None:
                    self._health.ok("live events")

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = await self._subscribed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._health is not None:
                    self._health.failed("live events", exc)
                else:
                    log.warning("live events: cannot subscribe to Redis (%s); retrying", exc)
                await asyncio.sleep(_RECONNECT_S)
                continue
            self._subscribed_event.set()
            try:
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        self._deliver(orjson.loads(message["data"]))
                    except orjson.JSONDecodeError:
                        log.warning("ignoring a malformed live event on %s", self._channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live events: Redis subscription lost (%s); reconnecting", exc)
            finally:
                self._subscribed_event.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(_RECONNECT_S)


def build_bus(redis: Any | None, health: Any = None) -> Bus:
    return RedisBus(redis, health=health) if redis is not None else Bus()
