"""What goes wrong around a text: the database away, Twilio's REST API failing, one
tenant's opt-out never leaking into another's, a malformed setting."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.app.twilio_side import until
from tests.sms.conftest import BUSINESS, CUSTOMER, SmsServer, SmsServerFactory, reply_of
from tests.tcp_proxy import TcpProxy
from voice_agent.settings import SettingsError, load_settings
from voice_agent.storage.tenants import Tenant


async def test_database_down_fails_closed_with_503(
    sms_server_factory: SmsServerFactory, pg_proxy: TcpProxy, pg_database: str
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{pg_database}"
    async with sms_server_factory(database_url=url) as server:
        assert reply_of(await server.text("hello")) is not None
        await pg_proxy.cut()
        response = await server.text("are you there?")
        assert response.status_code == 503  # Twilio falls back; nothing was sent
        status = await server.post(
            "/twilio/sms/status", {"MessageSid": "SM" + "d" * 32, "MessageStatus": "sent"}
        )
        assert status.status_code == 503
        await pg_proxy.restore()
        assert reply_of(await server.text("back again")) is not None
        assert server.twilio.message_requests() == []
        assert len(server.chats()) == 2


async def test_rest_errors_are_stored_on_the_message(sms_server_factory: SmsServerFactory) -> None:
    async with sms_server_factory(sms_reply_within_s=0.1) as server:
        server.twilio.inject_error(500, 20500, "Internal Server Error")
        server.openai.fail("chat", status=None, hang_s=0.4, times=1)
        assert reply_of(await server.text("hi")) is None
        await until(lambda: not server.runtime.sms._tasks, 5.0, "delivery")  # type: ignore[union-attr]
        reply = (await server.messages())[-1]
        assert (reply.direction, reply.status, reply.error_code) == ("outbound", "failed", "20500")


async def test_rest_unreachable_is_a_failed_message(sms_server_factory: SmsServerFactory) -> None:
    async with sms_server_factory(
        sms_reply_within_s=0.1, twilio_api_base_url="http://127.0.0.1:9"
    ) as server:
        server.openai.fail("chat", status=None, hang_s=0.4, times=1)
        assert reply_of(await server.text("hi")) is None
        await until(lambda: not server.runtime.sms._tasks, 15.0, "delivery")  # type: ignore[union-attr]
        reply = (await server.messages())[-1]
        assert (reply.status, reply.error_code) == ("failed", None)


async def test_no_rest_credentials_leaves_a_failed_message(
    sms_server_factory: SmsServerFactory,
) -> None:
    async with sms_server_factory(sms_reply_within_s=0.1, twilio_account_sid=None) as server:
        server.openai.fail("chat", status=None, hang_s=0.4, times=1)
        assert reply_of(await server.text("hi")) is None
        await until(lambda: not server.runtime.sms._tasks, 5.0, "delivery")  # type: ignore[union-attr]
        assert (await server.messages())[-1].status == "failed"
        assert reply_of(await server.text("quick one")) is not None  # TwiML needs no REST


async def test_opt_out_is_per_tenant(sms_server: SmsServer) -> None:
    tenants = sms_server.runtime.tenants
    await tenants.save(Tenant("bolt", "Bolt Electric", "receptionist", "lead_qualifier"))
    await tenants.add_number("default", BUSINESS)
    await tenants.add_number("bolt", "+15550002222")

    assert reply_of(await sms_server.text("STOP", to=BUSINESS)) is None
    assert reply_of(await sms_server.text("hello", to=BUSINESS)) is None
    assert reply_of(await sms_server.text("hello", to="+15550002222")) is not None
    opt_outs = sms_server.runtime.opt_outs
    assert await opt_outs.is_opted_out("default", CUSTOMER)
    assert not await opt_outs.is_opted_out("bolt", CUSTOMER)
    bolt = await sms_server.messages(tenant="bolt")
    assert [m.body for m in bolt if m.direction == "inbound"] == ["hello"]  # no STOP leaked


@pytest.mark.parametrize(
    ("name", "value"),
    [("sms_reply_within_s", "soon"), ("sms_reply_within_s", "0"), ("sms_replies_per_minute", "0")],
)
def test_malformed_sms_settings_name_themselves(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., object]
) -> None:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(name.upper())


async def test_wrong_rest_credentials_are_refused_and_recorded(
    sms_server_factory: SmsServerFactory,
) -> None:
    from loadtest.standins.twilio_rest import TwilioRestStandin
    from tests.conftest import TWILIO_ACCOUNT

    async with (
        TwilioRestStandin(TWILIO_ACCOUNT, "another-accounts-token") as strict,
        sms_server_factory(sms_reply_within_s=0.1, twilio_api_base_url=strict.base_url) as server,
    ):
        server.openai.fail("chat", status=None, hang_s=0.4, times=1)
        assert reply_of(await server.text("hi")) is None
        await until(lambda: not server.runtime.sms._tasks, 5.0, "delivery")  # type: ignore[union-attr]
        (request,) = strict.message_requests()
        assert not request.authorized and request.status == 401
        assert strict.messages == {}
        reply = (await server.messages())[-1]
        assert (reply.status, reply.error_code) == ("failed", "20003")
