from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from loadtest.standins.twilio_rest import TwilioRestStandin

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "standin-token-" + "x" * 18


@pytest.fixture
async def redis_prefix(redis_client: redis.asyncio.Redis) -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are removed afterwards."""
    prefix = f"test:va:tok:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
async def twilio_standin() -> AsyncIterator[TwilioRestStandin]:
    async with TwilioRestStandin(ACCOUNT_SID, AUTH_TOKEN) as standin:
        yield standin
