"""Live calls over server-sent events: a real call over the media websocket, watched by
staff through /api/live/events, on one server and across two workers sharing Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.fixtures import load_script
from tests.conftest import TWILIO_TOKEN
from tests.dashboard.conftest import login
from tests.dashboard.seed import add_tenant, add_user
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings


def script() -> list[CallerTurn]:
    said = {u.id: u for u in load_script()}
    return [CallerTurn(said["need"]), CallerTurn(said["goodbye"])]


async def _users(runtime: Runtime) -> None:
    await add_tenant(runtime.database, "acme")
    await add_user(runtime.database, "staff@default.test", "staff", "default")
    await add_user(runtime.database, "staff@acme.test", "staff", "acme")


async def _watch(
    client: httpx.AsyncClient,
    events: list[dict[str, Any]],
    opened: asyncio.Event,
    ended: asyncio.Event,
    params: dict[str, str] | None = None,
) -> None:
    """Collect the stream's events until cancelled; `ended` is set at each call's end."""
    async with client.stream("GET", "/api/live/events", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        opened.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
                if events[-1]["type"] == "call_ended":
                    ended.set()


async def _until_ended(
    events: list[dict[str, Any]], ended: asyncio.Event, call_sid: str, within_s: float
) -> None:
    """Until the call's own end arrives: the Redis channel is the machine's, so another
    test's calls may end in between."""
    async with asyncio.timeout(within_s):
        while not any(e["type"] == "call_ended" and e["call_sid"] == call_sid for e in events):
            ended.clear()
            await ended.wait()


async def _call_watched(
    call_server: Settings, watch_server: Settings
) -> tuple[CallResult, list[dict[str, Any]], list[dict[str, Any]]]:
    """Place a call on one server while default-tenant and acme staff watch on another."""
    async with (
        httpx.AsyncClient(base_url=watch_server.public_base_url, timeout=30) as mine,
        httpx.AsyncClient(base_url=watch_server.public_base_url, timeout=30) as other,
    ):
        assert (await login(mine, "staff@default.test")).status_code == 303
        assert (await login(other, "staff@acme.test")).status_code == 303
        seen: list[dict[str, Any]] = []
        not_mine: list[dict[str, Any]] = []
        opened = [asyncio.Event(), asyncio.Event()]
        ended = asyncio.Event()
        watchers = [
            asyncio.create_task(_watch(mine, seen, opened[0], ended)),
            asyncio.create_task(_watch(other, not_mine, opened[1], asyncio.Event())),
        ]
        for event in opened:
            await asyncio.wait_for(event.wait(), 10)
        result = await place_call(
            call_server.public_base_url, script(), auth_token=TWILIO_TOKEN, hangup_wait_s=3
        )
        try:
            await _until_ended(seen, ended, result.call_sid, 15)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    return result, seen, not_mine


def _check(result: CallResult, seen: list[dict[str, Any]], not_mine: list[dict[str, Any]]) -> None:
    assert result.error is None, result.error
    mine = [e for e in seen if e["call_sid"] == result.call_sid]
    assert mine[0]["type"] == "call_started" and mine[0]["tenant"] == "default"
    assert mine[-1]["type"] == "call_ended"
    turns = [e for e in mine if e["type"] == "turn"]
    said = {u.id: u.text for u in load_script()}
    callers = [t["text"] for t in turns if t["role"] == "caller"]
    assert callers == [said["need"], said["goodbye"]]
    assert [t["role"] for t in turns][:3] == ["agent", "caller", "agent"]
    # Turns arrive as they happen, in order, before the end.
    assert [t["seq"] for t in turns] == sorted(t["seq"] for t in turns)
    # Staff of another tenant saw nothing of it.
    assert [e for e in not_mine if e["call_sid"] == result.call_sid] == []


async def test_live_transcript_streams_to_the_tenants_staff(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings()
    async with running_server(settings) as runtime:
        await _users(runtime)
        _check(*await _call_watched(settings, settings))


@pytest.mark.redis
async def test_live_events_cross_workers_through_redis(
    cascade_settings: Callable[..., Settings],
) -> None:
    # Two servers (as two workers) on one database and Redis: the call on A, staff on B.
    worker_a = cascade_settings(redis_url="redis://127.0.0.1:6379/0")
    worker_b = cascade_settings(redis_url="redis://127.0.0.1:6379/0")
    async with running_server(worker_a) as runtime_a, running_server(worker_b) as runtime_b:
        await _users(runtime_a)
        for runtime in (runtime_a, runtime_b):
            await runtime.bus.wait_subscribed()  # type: ignore[union-attr]
        _check(*await _call_watched(worker_a, worker_b))


async def test_a_calls_page_stream_carries_that_call_only(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings()
    call_sid, elsewhere = "CA" + "1" * 32, "CA" + "2" * 32
    async with (
        running_server(settings) as runtime,
        httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http,
    ):
        await _users(runtime)
        assert (await login(http, "staff@default.test")).status_code == 303
        this_one: list[dict[str, Any]] = []
        another: list[dict[str, Any]] = []
        opened = [asyncio.Event(), asyncio.Event()]
        ended = asyncio.Event()
        watchers = [
            asyncio.create_task(_watch(http, this_one, opened[0], ended, {"call_sid": call_sid})),
            asyncio.create_task(
                _watch(http, another, opened[1], asyncio.Event(), {"call_sid": elsewhere})
            ),
        ]
        for event in opened:
            await asyncio.wait_for(event.wait(), 10)
        result = await place_call(
            settings.public_base_url,
            script(),
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=3,
            call_sid=call_sid,
        )
        try:
            await _until_ended(this_one, ended, call_sid, 15)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    assert result.error is None, result.error
    assert {e["call_sid"] for e in this_one} == {call_sid}
    assert [this_one[0]["type"], this_one[-1]["type"]] == ["call_started", "call_ended"]
    assert another == []
