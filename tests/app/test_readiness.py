"""/healthz says the process is up; /readyz says whether it can take calls, and names
the dependency that is missing when it cannot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from tests.app.conftest import Served
from tests.app.twilio_side import (
    issue_token,
    new_call_sid,
    open_stream,
    post_voice,
    until,
    voice_params,
)
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import free_port, running_server
from voice_agent.settings import Settings


async def get(settings: Settings, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.get(settings.public_base_url + path)


async def test_health_and_ready(served: Served) -> None:
    health = await get(served.settings, "/healthz")
    assert health.status_code == 200 and health.text == "ok"
    ready = await get(served.settings, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "pipeline": "cascade"}


async def test_ready_follows_postgres_through_an_outage(
    cascade_settings: Callable[..., Settings], pg_proxy: TcpProxy, pg_database: str
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{pg_database}"
    settings = cascade_settings(database_url=url)
    async with running_server(settings):
        assert (await get(settings, "/readyz")).status_code == 200

        await pg_proxy.cut()
        started = time.monotonic()
        down = await get(settings, "/readyz")
        assert time.monotonic() - started < 3.0  # a probe must answer, not hang
        assert down.status_code == 503
        body = down.json()
        assert body["ready"] is False and list(body["problems"]) == ["database"]
        assert (await get(settings, "/healthz")).status_code == 200  # alive all the same

        await pg_proxy.restore()
        up = await get(settings, "/readyz")
        assert up.status_code == 200 and up.json()["ready"] is True


async def test_unreachable_redis_starts_but_is_not_ready(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running_server(settings):
        assert (await get(settings, "/healthz")).status_code == 200
        response = await get(settings, "/readyz")
        assert response.status_code == 503
        assert list(response.json()["problems"]) == ["redis"]


async def test_tokens_shared_through_redis(cascade_settings: Callable[..., Settings]) -> None:
    settings = cascade_settings(redis_url="redis://127.0.0.1:6379/0")
    async with running_server(settings) as runtime:
        assert (await get(settings, "/readyz")).status_code == 200
        call_sid = new_call_sid()
        stream = await open_stream(settings, call_sid)
        await stream.start(await issue_token(settings, call_sid))
        await until(lambda: len(stream.agent_audio) > 0, what="greeting audio")
        await stream.stop()
        await until(stream.closed.is_set, what="the call to end")
        assert await runtime.writes.flush(5.0)
        assert await runtime.calls.get_call(call_sid) is not None


async def test_silent_redis_does_not_hang_the_probe(
    cascade_settings: Callable[..., Settings],
) -> None:
    # Accepts connections and never answers: a wedged Redis or a dropped-packet network.
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        settings = cascade_settings(redis_url=f"redis://127.0.0.1:{port}/0")
        async with running_server(settings):
            started = time.monotonic()
            response = await get(settings, "/readyz")
            assert time.monotonic() - started < 4.0
            assert response.status_code == 503
            assert list(response.json()["problems"]) == ["redis"]
    finally:
        for writer in accepted:
            writer.transport.abort()
        silent.close()
        await silent.wait_closed()


async def test_voice_webhook_still_connects_the_call_when_redis_is_down(
    cascade_settings: Callable[..., Settings],
) -> None:
    """Calls go on without Redis (#16): the per-call token is kept in this process, so the
    webhook answers with the stream at once instead of refusing the call."""
    settings = cascade_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running_server(settings):
        response = await post_voice(settings, voice_params(new_call_sid()))
    assert response.status_code == 200
    assert "<Stream" in response.text
