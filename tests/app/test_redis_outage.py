"""Redis cut mid-service (through the TCP proxy; the server itself is never stopped):
calls still connect and are answered in-process, each part that needed Redis says so
once and counts its failures, and everything goes back to Redis by itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from loadtest.fixtures import load_script
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import SILENCE_FRAME, issue_token, new_call_sid, open_stream, until
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings


async def _one_call(settings: Settings, runtime: Runtime, standin: StandinOpenAI) -> str:
    standin.add_script("I need help with a leaking roof")
    call_sid = new_call_sid()
    stream = await open_stream(settings, call_sid)
    await stream.start(await issue_token(settings, call_sid))
    await until(lambda: len(stream.agent_audio) > 0, what="the greeting")
    heard = len(stream.agent_audio)
    await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
    await until(lambda: len(stream.agent_audio) > heard, what="the reply")
    await stream.stop()
    await until(stream.closed.is_set, what="the end of the call")
    await until(lambda: not runtime.live_calls, what="the session to end")
    assert await runtime.writes.flush(5.0)
    stored = await runtime.calls.get_call(call_sid)
    assert stored is not None and stored.end_reason == "caller-hangup"
    return call_sid


def _metric(runtime: Runtime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_calls_go_on_without_redis_and_recover_when_it_returns(
    cascade_settings: Callable[..., Settings],
    standin: StandinOpenAI,
    redis_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = cascade_settings(redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
    async with running_server(settings) as runtime:
        await _one_call(settings, runtime, standin)  # through Redis
        assert _metric(runtime, "voice_agent_redis_up") == 1.0

        await redis_proxy.cut()
        with caplog.at_level(logging.WARNING, "voice_agent.redis_health"):
            for _ in range(2):
                await _one_call(settings, runtime, standin)  # tokens in this process
        warnings = [r.getMessage() for r in caplog.records if "redis unavailable" in r.getMessage()]
        # One warning per part, however many calls and events failed meanwhile.
        assert len([w for w in warnings if " tokens " in w]) == 1, warnings
        assert len([w for w in warnings if "live events" in w]) == 1, warnings
        assert _metric(runtime, "voice_agent_redis_errors_total", part="tokens") >= 2
        assert _metric(runtime, "voice_agent_redis_up") == 0.0

        caplog.clear()
        await redis_proxy.restore()
        with caplog.at_level(logging.WARNING, "voice_agent.redis_health"):
            await _one_call(settings, runtime, standin)
            await until(
                lambda: _metric(runtime, "voice_agent_redis_up") == 1.0,
                within_s=5.0,
                what="every part back on Redis",
            )
        back = [r.getMessage() for r in caplog.records if "redis is back" in r.getMessage()]
        assert "redis is back for tokens" in back
