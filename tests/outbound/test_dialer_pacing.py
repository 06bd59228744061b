"""Calls per second to Twilio are capped with a queue: a burst of leads is placed one by one,
and a lead whose call is still waiting gets its answer without a CallSid."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from tests.app.twilio_side import until
from tests.outbound.conftest import lead_body
from voice_agent.outbound.pacing import CpsGate


async def test_the_gate_spaces_requests_by_the_cap() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = CpsGate(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await gate.wait()
    assert slept == [0.5, 0.5]
    now[0] += 10  # idle for a while: the next one goes at once
    await gate.wait()
    assert slept == [0.5, 0.5]


async def test_a_burst_of_leads_is_paced(serve: Callable[..., Any]) -> None:
    async with serve(outbound_cps=10.0) as server:
        bodies = [lead_body(phone=f"(212) 555-01{i:02d}", email=None) for i in range(4)]
        responses = await asyncio.gather(*(server.post_lead(b) for b in bodies))
        assert all(r.status_code == 202 and r.json()["call_sid"] for r in responses)
        times = [r.at for r in server.creates()]
    # Arrival times: the first request also opens the connection, so only the whole span
    # and the later gaps are measured (the gate's exact spacing is tested above).
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3 and times[-1] - times[0] >= 0.2 and min(gaps[1:]) >= 0.08


async def test_a_lead_waiting_in_the_queue_is_answered_without_a_call_sid(
    serve: Callable[..., Any],
) -> None:
    async with serve(outbound_cps=1.0, lead_call_wait_s=0.2) as server:
        first = await server.post_lead(lead_body())
        second = await server.post_lead(lead_body(phone="(212) 555-0150", email=None))
        assert first.json()["call_status"] == "placed"
        body = second.json()
        assert body["call_sid"] is None and body["call_status"] == "queued"
        # It is placed a second after the first, all the same.
        await until(lambda: len(server.creates()) == 2, within_s=3.0, what="the queued call")
        again = (await server.post_lead(lead_body(phone="(212) 555-0150", email=None))).json()
        assert again["duplicate"] and again["call_sid"] == list(server.twilio.calls)[-1]


async def test_workers_share_the_cap_through_redis() -> None:
    import secrets

    import redis.asyncio as aioredis

    from voice_agent.outbound.pacing import RedisCpsGate

    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"va:test-cps:{secrets.token_hex(4)}:"
    try:
        # Two workers' gates, 20 calls a second between them: six calls take six slots.
        gates = [RedisCpsGate(client, 20.0, prefix=prefix) for _ in range(2)]
        slots = await asyncio.gather(*(gates[i % 2].wait() for i in range(6)))
    finally:
        await client.aclose()
    assert None not in slots and len(set(slots)) == 6
    assert max(slots) - min(slots) >= 5  # type: ignore[type-var, operator]
