"""The lead webhook while PostgreSQL is unreachable: a clear 503 the sender can retry, no
call placed; leads flow again once it is back."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from tests.outbound.conftest import WEDNESDAY_10AM_NY
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.settings import Settings

SECRET = "lead-secret-outage"
LEAD = {"firstName": "Maria", "phone": "(212) 555-0134", "email": "maria@example.com"}


async def test_leads_get_503_while_the_database_is_down(
    cascade_settings: Callable[..., Settings], pg_proxy: TcpProxy, pg_database: str
) -> None:
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as twilio:
        settings = cascade_settings(
            database_url=f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{pg_database}",
            twilio_account_sid=TWILIO_ACCOUNT,
            twilio_api_base_url=twilio.base_url,
            twilio_from_number="+13125550100",
            lead_webhook_secret=SECRET,
        )
        url = settings.public_base_url + "/webhooks/lead"
        headers = {"Authorization": f"Bearer {SECRET}"}
        # Inside the default calling hours, whatever day the suite runs on.
        async with (
            running_server(settings, now=lambda: WEDNESDAY_10AM_NY),
            httpx.AsyncClient(timeout=30.0) as http,
        ):
            await pg_proxy.cut()
            down = await http.post(url, json=LEAD, headers=headers)
            assert down.status_code == 503
            assert down.headers["retry-after"] == "30"
            assert twilio.requests == []

            await pg_proxy.restore()
            up = await http.post(url, json=LEAD, headers=headers)
            assert up.status_code == 202, up.text
            assert up.json()["call_sid"] in twilio.calls, up.json()
