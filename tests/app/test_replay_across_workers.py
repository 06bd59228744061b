"""Replayed voice webhooks across workers: two runtimes sharing one real Redis (as two
workers behind one load balancer would). The call's stream is on worker A; the same
webhook for the same CallSid, replayed to worker B, mints a token there, but the stream
it would open is refused, because A's stream holds the call's claim in Redis. With Redis
away, each worker still refuses a second stream of its own calls, says so once, and
goes back to Redis by itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio

from tests.app.twilio_side import (
    MediaStream,
    issue_token,
    new_call_sid,
    open_stream,
    post_voice,
    stream_from_twiml,
    until,
    voice_params,
)
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.telephony.stream_claims import PART

POLICY_VIOLATION = 1008
PREFIX = "va:stream:"


def _worker(
    cascade_settings: Callable[..., Settings], tmp_path: Path, name: str, redis_port: int
) -> Settings:
    folder = tmp_path / name
    folder.mkdir()
    return cascade_settings(
        database_url=f"sqlite:///{folder}/voice_agent.db",
        data_dir=str(folder),
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
    )


async def _stream(settings: Settings, call_sid: str, token: str) -> MediaStream:
    stream = await open_stream(settings, call_sid)
    await stream.start(token)
    return stream


async def _refused(stream: MediaStream, what: str) -> None:
    await until(stream.closed.is_set, what=what)
    assert stream.close_code == POLICY_VIOLATION
    assert not stream.agent_audio


async def _hang_up(stream: MediaStream, runtime: Runtime) -> None:
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    await until(lambda: not runtime.live_calls, what="the session to end")


async def _claim_gone(client: redis.asyncio.Redis, call_sid: str) -> bool:
    """The claim is released in the socket's teardown, just after the session ends."""
    for _ in range(100):
        if await client.get(PREFIX + call_sid) is None:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_webhook_replayed_to_another_worker_cannot_start_a_second_stream(
    cascade_settings: Callable[..., Settings],
    tmp_path: Path,
    redis_client: redis.asyncio.Redis,
) -> None:
    settings_a = _worker(cascade_settings, tmp_path, "a", 6379)
    settings_b = _worker(cascade_settings, tmp_path, "b", 6379)
    call_sid = new_call_sid()
    async with running_server(settings_a) as runtime_a, running_server(settings_b) as runtime_b:
        first = await _stream(settings_a, call_sid, await issue_token(settings_a, call_sid))
        await until(lambda: len(first.agent_audio) > 0, what="the greeting on worker A")
        assert await redis_client.get(PREFIX + call_sid) is not None

        # The same webhook for the same call, replayed to worker B: signed, so a token is
        # minted, but B refuses the stream although it has no call of its own.
        replayed = await post_voice(settings_b, voice_params(call_sid))
        assert replayed.status_code == 200
        token = stream_from_twiml(replayed.text)[1]["token"]
        assert not runtime_b.live_calls
        await _refused(await _stream(settings_b, call_sid, token), "B to refuse the stream")
        assert not first.closed.is_set()
        assert call_sid not in runtime_b.live_calls

        # The call ends on A: its claim goes with it (not left to expire).
        await _hang_up(first, runtime_a)
        assert await _claim_gone(redis_client, call_sid)

        # Another call's replay the other way round: B holds it, A refuses it.
        other = new_call_sid()
        second = await _stream(settings_b, other, await issue_token(settings_b, other))
        await until(lambda: len(second.agent_audio) > 0, what="the greeting on worker B")
        again = await _stream(settings_a, other, await issue_token(settings_a, other))
        await _refused(again, "A to refuse the stream")
        await _hang_up(second, runtime_b)


async def test_without_redis_each_worker_still_refuses_its_own_calls_second_stream(
    cascade_settings: Callable[..., Settings],
    tmp_path: Path,
    redis_proxy: TcpProxy,
    redis_client: redis.asyncio.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _worker(cascade_settings, tmp_path, "a", redis_proxy.port)
    async with running_server(settings) as runtime:
        await redis_proxy.cut()
        with caplog.at_level(logging.WARNING, "voice_agent.redis_health"):
            for _ in range(2):
                call_sid = new_call_sid()
                # Tokens are in this process too while Redis is away.
                first = await _stream(settings, call_sid, await issue_token(settings, call_sid))
                await until(lambda: len(first.agent_audio) > 0, what="the greeting")  # noqa: B023
                second = await _stream(settings, call_sid, await issue_token(settings, call_sid))
                await _refused(second, "the second stream to be refused in-process")
                await _hang_up(first, runtime)
        warnings = [r.getMessage() for r in caplog.records if "redis unavailable" in r.getMessage()]
        assert len([w for w in warnings if f" {PART} " in w]) == 1, warnings
        errors = runtime.metrics.registry.get_sample_value(
            "voice_agent_redis_errors_total", {"part": PART}
        )
        assert errors is not None and errors >= 2

        caplog.clear()
        await redis_proxy.restore()
        call_sid = new_call_sid()
        with caplog.at_level(logging.WARNING, "voice_agent.redis_health"):
            first = await _stream(settings, call_sid, await issue_token(settings, call_sid))
            await until(lambda: len(first.agent_audio) > 0, what="the greeting, Redis back")
        assert f"redis is back for {PART}" in [r.getMessage() for r in caplog.records]
        assert await redis_client.get(PREFIX + call_sid) is not None  # claimed in Redis again
        await _hang_up(first, runtime)
        assert await _claim_gone(redis_client, call_sid)
