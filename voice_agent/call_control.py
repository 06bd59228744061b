"""Live control of a call, whichever worker holds its media stream.

A voice webhook, an AMD verdict, a status callback or a dashboard button can land on any
worker of any host; the call's websocket (and so its session) lives on one. ``send`` acts
at once when the call streams in this process; otherwise it publishes the command on a
Redis channel every worker listens to, and waits (bounded) for the holder's
acknowledgement on a list only the two of them know. Without REDIS_URL there is one
process, so the same ``send`` simply finds the call here or answers that no one holds it.

Handlers run on the holding worker and must return quickly: what takes long (a voicemail
playing, a goodbye being heard) goes on in a task there, after the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

log = logging.getLogger(__name__)

CHANNEL = "voice_agent:call_control"
_ACK_KEY = "voice_agent:call_control:ack:"
_ACK_TTL_S = 30
_RECONNECT_S = 1.0
DEFAULT_TIMEOUT_S = 3.0
#: A live worker acknowledges in a few ms (one publish, one list push); this is what a
#: resume after a worker's death adds to the caller's silence.
HOLDER_PROBE_S = 0.25

Ack = dict[str, Any]
#: (the call's tap, the command's arguments) -> what the acknowledgement says.
Handler = Callable[[Any, dict[str, Any]], Awaitable[Ack]]


class CallControl:
    def __init__(
        self,
        live_calls: Mapping[str, Any],
        redis: Any | None = None,
        channel: str = CHANNEL,
        worker: str | None = None,
    ) -> None:
        self._live = live_calls
        self._redis = redis
        self._channel = channel
        self.worker = worker or f"{os.uname().nodename}:{os.getpid()}"
        self._handlers: dict[str, Handler] = {}
        self._listener: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.subscribed = asyncio.Event()

    def register(self, action: str, handler: Handler) -> None:
        self._handlers[action] = handler

    def holds(self, call_sid: str) -> bool:
        return call_sid in self._live

    async def send(
        self,
        call_sid: str,
        action: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        **args: Any,
    ) -> Ack | None:
        """Do ``action`` on the call; the holder's acknowledgement, or None when no worker
        holding the call answered within ``timeout_s``."""
        if call_sid in self._live:
            return await self._execute(call_sid, action, args)
        if self._redis is None:
            return None
        request_id = secrets.token_hex(8)
        message = {"id": request_id, "call_sid": call_sid, "action": action, "args": args}
        try:
            async with asyncio.timeout(timeout_s):
                await self._redis.publish(self._channel, orjson.dumps(message))
                reply = await self._redis.blpop([_ACK_KEY + request_id], timeout=timeout_s)
        except TimeoutError:
            reply = None
        except Exception as exc:
            log.warning("call %s: %s not sent to its worker: %s", call_sid, action, exc)
            return None
        if reply is None:
            log.info("call %s: no worker acknowledged %s in %g s", call_sid, action, timeout_s)
            return None
        return orjson.loads(reply[1])

    async def held_elsewhere(self, call_sid: str) -> bool:
        """True when another worker's session has the call's stream (it answered within
        HOLDER_PROBE_S). A dead worker never answers: it is waited for that long."""
        if self._redis is None:
            return False
        ack = await self.send(call_sid, "holding", timeout_s=HOLDER_PROBE_S)
        return bool(ack and ack.get("ok"))

    async def notify(self, call_sid: str, action: str, **args: Any) -> None:
        """``send`` without waiting for anyone: for news the holder may act on (a status
        callback), where the sender has nothing to do with the answer."""
        if call_sid in self._live:
            await self._execute(call_sid, action, args)
            return
        if self._redis is None:
            return
        message = {"id": None, "call_sid": call_sid, "action": action, "args": args}
        try:
            async with asyncio.timeout(DEFAULT_TIMEOUT_S):
                await self._redis.publish(self._channel, orjson.dumps(message))
        except Exception as exc:
            log.warning("call %s: %s not published: %s", call_sid, action, exc)

    async def _execute(self, call_sid: str, action: str, args: dict[str, Any]) -> Ack | None:
        tap = self._live.get(call_sid)
        handler = self._handlers.get(action)
        if tap is None:
            return None
        if handler is None:
            return {"ok": False, "error": f"unknown action {action}", "worker": self.worker}
        try:
            ack = await handler(tap, args)
        except Exception as exc:
            log.exception("call %s: %s failed", call_sid, action)
            ack = {"ok": False, "error": str(exc) or type(exc).__name__}
        return {"worker": self.worker} | ack

    # --- the Redis side -------------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="call-control")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=2.0)
        for task in tuple(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()  # type: ignore[union-attr]
            try:
                await pubsub.subscribe(self._channel)
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._take(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("call control: Redis subscription lost (%s); reconnecting", exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(_RECONNECT_S)

    def _take(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
            call_sid = message["call_sid"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("call control: ignoring a malformed command")
            return
        if call_sid not in self._live:
            return  # another worker's call (or nobody's): its holder answers
        task = asyncio.create_task(self._answer(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        ack = await self._execute(message["call_sid"], message["action"], message.get("args", {}))
        if ack is None or not message.get("id"):
            return
        key = _ACK_KEY + message["id"]
        try:
            async with asyncio.timeout(DEFAULT_TIMEOUT_S):
                await self._redis.rpush(key, orjson.dumps(ack))  # type: ignore[union-attr]
                await self._redis.expire(key, _ACK_TTL_S)  # type: ignore[union-attr]
        except Exception as exc:
            log.warning("call %s: acknowledgement not sent: %s", message["call_sid"], exc)

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run what outlasts the acknowledgement (a message playing) and keep hold of it."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
