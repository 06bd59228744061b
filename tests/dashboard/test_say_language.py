"""TwiML <Say> fallbacks speak the agent's language (#13): a tenant whose published agent
is Spanish gets ``language="es-ES"`` on the warm transfer's whisper and apology; an
English agent's stay en-US."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.app.twilio_side import sign
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from tests.dashboard.conftest import (
    ACME_STAFF,
    Site,
    client_for,
    csrf_of,
    login,
    seed,
    serve_in_process,
)
from voice_agent.settings import Settings

AGENT = "/portal/acme/agents/receptionist"
APOLOGY = "Ahora mismo no puedo pasarle, pero le llamaremos pronto."


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioRestStandin]:
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as standin:
        yield standin


@pytest.fixture
async def site_with_rest(
    cascade_settings: Callable[..., Settings], recording: Path, twilio: TwilioRestStandin
) -> AsyncIterator[Site]:
    """The seeded dashboard with Twilio REST credentials, so transfers are warm."""
    settings = cascade_settings(
        twilio_account_sid=TWILIO_ACCOUNT, twilio_api_base_url=twilio.base_url
    )
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)
        yield Site(app, runtime, settings, recording)


async def _post(site: Site, url: str, params: dict[str, str]) -> httpx.Response:
    async with client_for(site.app, site.settings.public_base_url) as twilio:
        answer = await twilio.post(
            url, data=params, headers={"X-Twilio-Signature": sign(url, params)}
        )
    assert answer.status_code == 200, answer.text
    return answer


async def _publish_spanish(site: Site) -> None:
    async with client_for(site.app) as staff:
        assert (await login(staff, ACME_STAFF)).status_code == 303
        token = csrf_of((await staff.get(AGENT)).text)
        published = await staff.post(
            AGENT + "/draft",
            data={
                "csrf_token": token,
                "language": "es",
                "transfer_unavailable": APOLOGY,
                "action": "publish",
            },
        )
        assert published.status_code == 303, published.text


async def _transfer(site: Site, twilio: TwilioRestStandin, tenant: str) -> tuple[str, str]:
    """A warm transfer of a live call of `tenant`'s receptionist, as its session asks for
    one: the whisper and <Dial action> URLs Twilio was given."""
    agent = site.runtime.agent_for(tenant, "receptionist")[0] or site.runtime.agents.lookup(
        tenant, "receptionist"
    )
    assert agent is not None
    call_sid = "CA" + secrets.token_hex(16)
    twilio.register_call(call_sid)
    transfers = site.runtime.transfers
    assert transfers is not None
    assert await transfers.transfer(
        call_sid, "+15557654321", "Transfer from Receptionist: a caller.", agent.slug, tenant,
        language=agent.language,
    )  # fmt: skip
    (update,) = twilio.requests_for(call_sid)
    dial = ET.fromstring(update.form["Twiml"]).find("Dial")
    assert dial is not None
    number = dial.find("Number")
    assert number is not None
    return number.get("url", ""), dial.get("action", "")


async def _says(
    site: Site, tenant: str, twilio: TwilioRestStandin
) -> tuple[ET.Element, ET.Element]:
    """The whisper's <Say> and, after nobody answers twice, the apology's <Say>."""
    whisper_url, action_url = await _transfer(site, twilio, tenant)
    child = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": TWILIO_ACCOUNT}
    whisper = ET.fromstring((await _post(site, whisper_url, child)).text).find("Say")
    parent = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": TWILIO_ACCOUNT}
    cold = ET.fromstring(
        (await _post(site, action_url, parent | {"DialCallStatus": "no-answer"})).text
    )
    cold_dial = cold.find("Dial")
    assert cold_dial is not None
    apology = ET.fromstring(
        (await _post(site, cold_dial.get("action", ""), parent | {"DialCallStatus": "busy"})).text
    )
    assert [c.tag for c in apology] == ["Say", "Hangup"]
    assert whisper is not None
    return whisper, apology[0]


async def test_a_spanish_agents_fallbacks_are_said_in_spanish(
    site_with_rest: Site, twilio: TwilioRestStandin
) -> None:
    await _publish_spanish(site_with_rest)
    whisper, apology = await _says(site_with_rest, "acme", twilio)
    assert whisper.get("language") == "es-ES"
    assert apology.get("language") == "es-ES" and apology.text == APOLOGY + " Goodbye."


async def test_an_english_agents_fallbacks_stay_en_us(
    site_with_rest: Site, twilio: TwilioRestStandin
) -> None:
    whisper, apology = await _says(site_with_rest, "globex", twilio)
    assert whisper.get("language") == "en-US" and apology.get("language") == "en-US"
