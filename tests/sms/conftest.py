"""SMS fixtures: the app on loopback (cascade pipeline on the OpenAI stand-in) with its
Twilio REST client pointed at the Twilio stand-in, and a texter that signs like Twilio."""

from __future__ import annotations

import contextlib
import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.app.conftest import pg_database, pg_proxy  # noqa: F401 - fixtures used here too
from tests.app.twilio_side import sign
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.sms import SmsMessage, SmsRepository, SmsThread

CUSTOMER = "+14155550134"
BUSINESS = "+15557654321"
FROM_NUMBER = "+15550009999"


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sms_params(body: str, *, from_: str = CUSTOMER, to: str = BUSINESS, **extra: str) -> dict:
    return {
        "MessageSid": new_message_sid(),
        "AccountSid": TWILIO_ACCOUNT,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    } | extra


def reply_of(response: httpx.Response) -> str | None:
    """The <Message> text of a TwiML answer, None for an empty <Response/>."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


def status_callback_of(response: httpx.Response) -> str:
    message = ET.fromstring(response.text).find("Message")
    assert message is not None
    return message.get("statusCallback", "")


@dataclass
class SmsServer:
    settings: Settings
    runtime: Runtime
    twilio: TwilioRestStandin
    openai: StandinOpenAI

    @property
    def repo(self) -> SmsRepository:
        return SmsRepository(self.runtime.database)

    async def post(
        self,
        path_or_url: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        url = (
            path_or_url
            if path_or_url.startswith("http")
            else self.settings.public_base_url + path_or_url
        )
        headers: dict[str, str] = {}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        elif signed:
            headers["X-Twilio-Signature"] = sign(url, params)
        async with httpx.AsyncClient(timeout=10.0) as http:
            return await http.post(url, data=params, headers=headers)

    async def text(self, body: str, **options: str) -> httpx.Response:
        return await self.post("/twilio/sms", sms_params(body, **options))

    async def thread(self, number: str = CUSTOMER, tenant: str = "default") -> SmsThread:
        thread = await self.repo.thread(tenant, number)
        assert thread is not None
        return thread

    async def messages(self, number: str = CUSTOMER, tenant: str = "default") -> list[SmsMessage]:
        return await self.repo.messages((await self.thread(number, tenant)).id)

    def chats(self) -> list[dict]:
        return [dict(r.body) for r in self.openai.recorded("chat")]


SmsServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[SmsServer]]


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioRestStandin]:
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
def sms_server_factory(
    cascade_settings: Callable[..., Settings], standin: StandinOpenAI, twilio: TwilioRestStandin
) -> SmsServerFactory:
    @contextlib.asynccontextmanager
    async def make(**overrides: object) -> AsyncIterator[SmsServer]:
        values: dict[str, object] = {
            "twilio_account_sid": TWILIO_ACCOUNT,
            "twilio_api_base_url": twilio.base_url,
            "twilio_from_number": FROM_NUMBER,
        }
        values.update(overrides)
        settings = cascade_settings(**values)
        async with running_server(settings) as runtime:
            yield SmsServer(settings, runtime, twilio, standin)

    return make


@pytest.fixture
async def sms_server(sms_server_factory: SmsServerFactory) -> AsyncIterator[SmsServer]:
    async with sms_server_factory() as server:
        yield server
