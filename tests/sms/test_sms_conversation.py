"""POST /twilio/sms end to end: the agent answers by text from the stored thread, inline as
TwiML when quick, through Messages.create when slow."""

from __future__ import annotations

import time

from loadtest.standins.openai_server import Reply
from tests.app.twilio_side import sign, until
from tests.sms.conftest import (
    BUSINESS,
    CUSTOMER,
    SmsServer,
    SmsServerFactory,
    reply_of,
    sms_params,
)


async def test_thread_history_reaches_the_model(sms_server: SmsServer) -> None:
    first = reply_of(await sms_server.text("Hi, I need a new roof"))
    assert first is not None and "Hi I need a" in first
    second = reply_of(await sms_server.text("Budget is about ten thousand"))
    assert second is not None and "Budget is about ten" in second

    chats = sms_server.chats()
    assert len(chats) == 2
    messages = chats[-1]["messages"]
    assert messages[0]["role"] == "system"
    assert "text messages (SMS)" in messages[0]["content"]
    assert CUSTOMER in messages[0]["content"]  # the thread's context: who and their time
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "Hi, I need a new roof"),
        ("assistant", first),
        ("user", "Budget is about ten thousand"),
    ]
    tools = {t["function"]["name"] for t in chats[-1]["tools"]}
    assert tools == {"hand_off", "schedule_callback", "send_link"}  # not the voice tools

    stored = await sms_server.messages()
    assert [(m.direction, m.body) for m in stored] == [
        ("inbound", "Hi, I need a new roof"),
        ("outbound", first),
        ("inbound", "Budget is about ten thousand"),
        ("outbound", second),
    ]
    assert all(m.segments >= 1 for m in stored)
    thread = await sms_server.thread()
    assert (thread.business_number, thread.agent, thread.state) == (
        BUSINESS,
        "receptionist",
        "agent",
    )
    assert sms_server.twilio.message_requests() == []  # inline replies need no REST call

    # Metered (#14): each text's segments in and out, and the model's tokens for each reply
    # as its stream's usage chunk gave them.
    month = await sms_server.runtime.billing.costs.month("default")  # type: ignore[union-attr]
    assert month.usage["sms_segments"] == sum(m.segments for m in stored)
    reported = list(sms_server.openai.usage_sent)
    assert month.usage["llm_input_tokens"] == sum(u["prompt_tokens"] for u in reported) > 0
    assert month.usage["llm_output_tokens"] == sum(u["completion_tokens"] for u in reported)


async def test_slow_model_replies_through_the_rest_api(
    sms_server_factory: SmsServerFactory,
) -> None:
    async with sms_server_factory(sms_reply_within_s=0.2) as server:
        server.openai.fail("chat", status=None, hang_s=1.0, times=1)
        started = time.monotonic()
        response = await server.text("Do you fix gutters?")
        assert reply_of(response) is None  # answered at once, empty
        assert time.monotonic() - started < 0.9

        await until(lambda: len(server.twilio.message_requests()) == 1, 5.0, "Messages.create")
        request = server.twilio.message_requests()[0]
        assert request.authorized and request.status == 201
        form = request.form
        assert form["To"] == CUSTOMER
        assert form["From"] == BUSINESS  # from the number that was texted
        assert "Do you fix gutters" in form["Body"]
        stored = await server.messages()
        assert stored[-1].direction == "outbound" and stored[-1].body == form["Body"]
        assert form["StatusCallback"].endswith(f"/twilio/sms/status?m={stored[-1].id}")
        sid = next(iter(server.twilio.messages))
        assert (stored[-1].message_sid, stored[-1].status) == (sid, "queued")


async def test_slow_reply_is_not_lost_at_shutdown(sms_server_factory: SmsServerFactory) -> None:
    async with sms_server_factory(sms_reply_within_s=0.1) as server:
        server.openai.fail("chat", status=None, hang_s=0.6, times=1)
        assert reply_of(await server.text("Are you open Saturday?")) is None
        twilio = server.twilio
    # The server has stopped: shutdown waited for the reply to be written and sent.
    assert len(twilio.message_requests()) == 1
    assert "Are you open Saturday" in twilio.message_requests()[0].form["Body"]


async def test_model_down_gets_an_apology_not_silence(sms_server: SmsServer) -> None:
    sms_server.openai.fail("chat", status=500)
    reply = reply_of(await sms_server.text("Hello?"))
    assert reply is not None and "get back to you" in reply


async def test_long_reply_is_cut_to_the_tenant_segment_cap(sms_server: SmsServer) -> None:
    long = " ".join(["This is a rather long sentence about roofing options."] * 40)
    sms_server.openai.responder = lambda messages, tools: Reply(long)
    reply = reply_of(await sms_server.text("Tell me everything"))
    assert reply is not None
    assert len(reply) <= 3 * 153 and reply.endswith("...")
    assert long.startswith(reply[:-3])  # cut at a word boundary of the model's text
    assert reply[:-3] == reply[:-3].rstrip()
    stored = (await sms_server.messages())[-1]
    assert stored.segments == 3

    tenant = await sms_server.runtime.tenants.get("default")
    tenant.sms_max_segments = 1
    await sms_server.runtime.tenants.save(tenant)
    reply = reply_of(await sms_server.text("Again please"))
    assert reply is not None and len(reply) <= 160


async def test_rate_limit_stops_bot_loops(sms_server_factory: SmsServerFactory) -> None:
    async with sms_server_factory(sms_replies_per_minute=2) as server:
        assert reply_of(await server.text("auto-reply: thanks for your message")) is not None
        assert reply_of(await server.text("auto-reply: thanks for your message")) is not None
        assert reply_of(await server.text("auto-reply: thanks for your message")) is None
        assert len(server.chats()) == 2  # the third never reached the model
        stored = await server.messages()
        assert [m.direction for m in stored].count("inbound") == 3
        # Another number is not held back by this one.
        assert reply_of(await server.text("hello", from_="+14155550199")) is not None


async def test_mms_is_stored_and_acknowledged(sms_server: SmsServer) -> None:
    params = sms_params(
        "",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/media/ME2",
        MediaContentType1="image/png",
    )
    reply = reply_of(await sms_server.post("/twilio/sms", params))
    assert reply == "Thanks, we got your pictures. A member of our team will take a look."
    assert sms_server.chats() == []
    inbound = (await sms_server.messages())[0]
    assert inbound.media_urls == [
        "https://api.twilio.com/media/ME1",
        "https://api.twilio.com/media/ME2",
    ]

    params = sms_params(
        "Here is the leak",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME3",
        MediaContentType0="image/jpeg",
    )
    assert reply_of(await sms_server.post("/twilio/sms", params)) is not None
    last_user = sms_server.chats()[-1]["messages"][-1]
    assert last_user == {"role": "user", "content": "Here is the leak [sent 1 attachment]"}


async def test_twilio_retry_is_not_answered_twice(sms_server: SmsServer) -> None:
    params = sms_params("Hi there")
    assert reply_of(await sms_server.post("/twilio/sms", params)) is not None
    assert reply_of(await sms_server.post("/twilio/sms", params)) is None
    assert len(sms_server.chats()) == 1
    assert len(await sms_server.messages()) == 2


async def test_unknown_number_is_ignored_once_numbers_are_set_up(sms_server: SmsServer) -> None:
    tenants = sms_server.runtime.tenants
    default = await tenants.get("default")
    default.slug, default.name = "acme", "Acme Roofing"
    await tenants.save(default)
    await tenants.add_number("acme", BUSINESS)

    assert reply_of(await sms_server.text("hello", to="+15550001111")) is None
    assert await sms_server.repo.thread("default", CUSTOMER) is None
    assert sms_server.chats() == []

    assert reply_of(await sms_server.text("hello", to=BUSINESS)) is not None
    thread = await sms_server.thread(tenant="acme")
    assert thread.business_number == BUSINESS


async def test_signatures_and_fields_are_checked(sms_server: SmsServer) -> None:
    params = sms_params("hello")
    url = sms_server.settings.public_base_url + "/twilio/sms"

    forged = await sms_server.post(url, params, signature=sign(url, params, "wrong-token"))
    assert forged.status_code == 403
    unsigned = await sms_server.post(url, params, signed=False)
    assert unsigned.status_code == 403
    tampered = await sms_server.post(url, params | {"Body": "STOP"}, signature=sign(url, params))
    assert tampered.status_code == 403
    assert await sms_server.repo.thread("default", CUSTOMER) is None

    missing = {k: v for k, v in params.items() if k not in ("From", "MessageSid")}
    response = await sms_server.post(url, missing)
    assert response.status_code == 400
    assert "MessageSid" in response.text and "From" in response.text

    status_url = sms_server.settings.public_base_url + "/twilio/sms/status"
    status = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    forged = await sms_server.post(
        status_url, status, signature=sign(status_url, status, "wrong-token")
    )
    assert forged.status_code == 403
    response = await sms_server.post(status_url, {"MessageStatus": "sent"})
    assert response.status_code == 400 and "MessageSid" in response.text
