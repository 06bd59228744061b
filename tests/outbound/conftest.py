"""A server with the outbound flows live: Twilio's REST API stood in on loopback (Basic auth
checked, requests recorded, Twilio's callbacks sent from it, signed), OpenAI stood in, and
a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loadtest.standins.twilio_rest import RecordedRequest, TwilioRestStandin
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.leads import LeadRepository

LEAD_SECRET = "lead-secret-0123456789"
FROM_NUMBER = "+13125550100"
#: A New York lead (the zone comes from the number).
LEAD_PHONE = "+12125550134"
#: Wednesday 25 November 2026, 10:00 in New York: inside the default calling hours.
WEDNESDAY_10AM_NY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Outbound:
    settings: Settings
    runtime: Runtime
    twilio: TwilioRestStandin
    clock: Clock

    @property
    def leads(self) -> LeadRepository:
        return LeadRepository(self.runtime.database)

    def creates(self) -> list[RecordedRequest]:
        return [r for r in self.twilio.requests if r.path.endswith("/Calls.json")]

    async def post_lead(
        self,
        body: Any,
        *,
        secret: str | None = LEAD_SECRET,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await post_lead(self.settings, body, secret=secret, params=params, headers=headers)


async def post_lead(
    settings: Settings,
    body: Any,
    *,
    secret: str | None = LEAD_SECRET,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    url = settings.public_base_url + "/webhooks/lead"
    async with httpx.AsyncClient(timeout=15.0) as http:
        if isinstance(body, bytes):
            return await http.post(
                url,
                content=body,
                params=params,
                headers=sent | {"content-type": "application/json"},
            )
        return await http.post(url, json=body, params=params, headers=sent)


def lead_body(**extra: Any) -> dict[str, Any]:
    return {
        "firstName": "Maria",
        "lastName": "Lopez",
        "email": "maria@example.com",
        "phone": "(212) 555-0134",
        "source": "website",
    } | extra


@pytest.fixture
def clock() -> Clock:
    return Clock(WEDNESDAY_10AM_NY)


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioRestStandin]:
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as standin:
        yield standin


@pytest.fixture
def outbound_settings(
    cascade_settings: Callable[..., Settings], twilio: TwilioRestStandin
) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "twilio_account_sid": TWILIO_ACCOUNT,
            "twilio_api_base_url": twilio.base_url,
            "twilio_from_number": FROM_NUMBER,
            "lead_webhook_secret": LEAD_SECRET,
            "outbound_cps": 50.0,
            "dialer_poll_s": 0.05,
        }
        values.update(overrides)
        return cascade_settings(**values)

    return make


@pytest.fixture
def serve(
    outbound_settings: Callable[..., Settings], twilio: TwilioRestStandin, clock: Clock
) -> Callable[..., Any]:
    """``async with serve(**settings) as server:`` a running server with outbound flows."""
    import contextlib

    @contextlib.asynccontextmanager
    async def run(**overrides: object) -> AsyncIterator[Outbound]:
        settings = outbound_settings(**overrides)
        async with running_server(settings, now=clock) as runtime:
            yield Outbound(settings, runtime, twilio, clock)

    return run


@pytest.fixture
async def server(serve: Callable[..., Any]) -> AsyncIterator[Outbound]:
    async with serve() as running:
        yield running
