"""Two server processes' worth of app on one database and one Redis: the same form posted
to both at once is still one lead and one call."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable

from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.outbound.conftest import Clock, lead_body, post_lead
from voice_agent.demo import free_port, running_server
from voice_agent.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_one_lead_from_simultaneous_submissions_to_two_workers(
    outbound_settings: Callable[..., Settings], clock: Clock, twilio: TwilioRestStandin
) -> None:
    first = outbound_settings(redis_url=REDIS_URL)
    second = first.model_copy(update={"public_base_url": f"http://127.0.0.1:{free_port()}"})
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(running_server(first, now=clock))
        await stack.enter_async_context(running_server(second, now=clock))
        for round_ in range(1, 4):
            # A number no other run uses: the lock keys live in the shared Redis.
            body = lead_body(phone=f"(212) 555-{secrets.randbelow(10000):04d}", email=None)
            responses = await asyncio.gather(post_lead(first, body), post_lead(second, body))
            assert [r.status_code for r in responses] == [202, 202]
            bodies = [r.json() for r in responses]
            assert bodies[0]["lead_id"] == bodies[1]["lead_id"]
            assert sorted(b["duplicate"] for b in bodies) == [False, True]
            calls = [r for r in twilio.requests if r.path.endswith("/Calls.json")]
            assert len(calls) == round_
