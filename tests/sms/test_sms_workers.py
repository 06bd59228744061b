"""Two workers sharing the database and Redis: a burst of texts split between them is
answered one reply at a time, so the per-thread rate limit counts every reply; and with
Redis down a text is still answered."""

from __future__ import annotations

import asyncio
import logging

import pytest

from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.sms.conftest import SmsServerFactory, reply_of
from voice_agent.demo import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
BOT_TEXT = "auto-reply: thanks for your message"


async def test_a_burst_split_across_workers_gets_one_reply_at_a_time(
    sms_server_factory: SmsServerFactory, standin: StandinOpenAI
) -> None:
    # A slow model, so both workers are inside their reply at once unless the lock is shared.
    standin.latency = Latency(0, llm_first_token_ms=300, llm_token_ms=1)
    shared = {"redis_url": REDIS_URL, "sms_replies_per_minute": 2}
    async with sms_server_factory(**shared) as one, sms_server_factory(**shared) as two:
        assert reply_of(await one.text("Hi")) is not None  # one of the minute's two replies
        standin.requests.clear()

        first, second = await asyncio.gather(one.text(BOT_TEXT), two.text(BOT_TEXT))
        answered = [r for r in (reply_of(first), reply_of(second)) if r is not None]
        stored = await one.messages()

    # One reply was left in the minute: whichever worker took the thread's lock second saw
    # it spent. Without the shared lock both checked the limit before either had replied.
    assert len(answered) == 1
    assert len(one.chats()) == 1
    assert [m.direction for m in stored].count("inbound") == 3
    assert [m.direction for m in stored].count("outbound") == 2


async def test_with_redis_down_a_text_is_still_answered(
    sms_server_factory: SmsServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with sms_server_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0") as server:
        with caplog.at_level(logging.WARNING, logger="voice_agent.sms.thread_locks"):
            reply = reply_of(await server.text("Hi, I need a new roof"))
    assert reply is not None and "Hi I need a" in reply
    assert "no Redis lock" in caplog.text
