"""Two workers sharing the database and Redis: the lead's call is placed by one, Twilio's
answer reaches the other, and the greeting made while it rang is still the one played."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis.asyncio as aioredis

from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import open_stream, stream_from_twiml, until
from tests.outbound.conftest import Outbound, lead_body
from tests.outbound.test_outbound_call import GREETING

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


async def _place_on_first_answer_on_second(
    placing: Outbound, answering: Outbound, standin: StandinOpenAI, redis: aioredis.Redis
) -> tuple[str, str]:
    """(call sid, shared greeting key) once the call is placed and its greeting made."""
    response = await placing.post_lead(lead_body())
    assert response.status_code == 202, response.text
    call_sid = response.json()["call_sid"]
    call = placing.twilio.calls[call_sid]
    key = "va:greeting:" + parse_qs(urlsplit(call.url).query)["scheduled"][0]
    await until(
        lambda: any(r.body["input"] == GREETING for r in standin.recorded("speech")),
        what="the greeting synthesised while it rings",
    )
    await _eventually(lambda: redis.exists(key), "the greeting shared through Redis")
    # The load balancer sends Twilio's answer to the other worker.
    call.url = call.url.replace(
        placing.settings.public_base_url, answering.settings.public_base_url
    )
    return call_sid, key


async def _eventually(check: Callable[[], Awaitable[Any]], what: str) -> None:
    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _answer_and_hear_greeting(answering: Outbound, call_sid: str) -> None:
    status, document = await answering.twilio.answer(call_sid)
    assert status == 200, document
    stream = await open_stream(answering.settings, call_sid)
    await stream.start(stream_from_twiml(document)[1]["token"])
    registry = answering.runtime.metrics.registry
    await until(
        lambda: registry.get_sample_value("voice_agent_turns_total", {"role": "agent"}) == 1,
        what="the greeting, played on the answering worker",
    )
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    assert await answering.runtime.writes.flush(5.0)
    stored = await answering.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.turns[0].text == GREETING


async def test_the_answering_worker_plays_the_greeting_made_by_the_placing_one(
    serve: Callable[..., Any], standin: StandinOpenAI, redis: aioredis.Redis
) -> None:
    async with serve(redis_url=REDIS_URL) as placing, serve(redis_url=REDIS_URL) as answering:
        call_sid, key = await _place_on_first_answer_on_second(placing, answering, standin, redis)
        spoken_before_answer = len(standin.recorded("speech"))
        await _answer_and_hear_greeting(answering, call_sid)
        # Nothing synthesised after the answer, and the copy was taken, not left to expire.
        assert len(standin.recorded("speech")) == spoken_before_answer
        assert not await redis.exists(key)


async def test_without_the_shared_copy_the_answering_worker_makes_the_greeting(
    serve: Callable[..., Any], standin: StandinOpenAI, redis: aioredis.Redis
) -> None:
    async with serve(redis_url=REDIS_URL) as placing, serve(redis_url=REDIS_URL) as answering:
        call_sid, key = await _place_on_first_answer_on_second(placing, answering, standin, redis)
        await redis.delete(key)  # expired, or never made it to Redis
        spoken_before_answer = len(standin.recorded("speech"))
        await _answer_and_hear_greeting(answering, call_sid)
        assert len(standin.recorded("speech")) == spoken_before_answer + 1


async def test_a_call_answered_where_it_was_placed_leaves_nothing_in_redis(
    serve: Callable[..., Any], standin: StandinOpenAI, redis: aioredis.Redis
) -> None:
    async with serve(redis_url=REDIS_URL) as server:
        call_sid, key = await _place_on_first_answer_on_second(server, server, standin, redis)
        spoken_before_answer = len(standin.recorded("speech"))
        await _answer_and_hear_greeting(server, call_sid)
        assert len(standin.recorded("speech")) == spoken_before_answer

        async def gone() -> bool:
            return not await redis.exists(key)

        await _eventually(gone, "the unused shared copy dropped")
