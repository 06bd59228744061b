"""Opt-out, opt-in and HELP keywords, handled before any model, and an opted-out number
getting nothing from any path: agent reply, late reply, follow-up after a call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.app.twilio_side import until
from tests.sms.conftest import CUSTOMER, SmsServer, SmsServerFactory, reply_of
from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent
from voice_agent.sms.keywords import HELP, OPT_IN, OPT_OUT
from voice_agent.storage.scheduled_calls import ScheduledCall

#: Every opt-out keyword as people actually type it.
STYLES = (str.lower, str.upper, str.title, lambda w: f"  {w.lower()}!! ", lambda w: f"{w}.")


def variants(word: str) -> list[str]:
    return [style(word) for style in STYLES] + [
        word[0].lower() + word[1:].upper() + "?"  # mixed case with punctuation
    ]


async def test_every_opt_out_keyword_opts_out_before_any_model(sms_server: SmsServer) -> None:
    opt_outs = sms_server.runtime.opt_outs
    for n, text in enumerate(v for w in sorted(OPT_OUT) for v in variants(w)):
        number = f"+1415555{n:04d}"
        response = await sms_server.text(text, from_=number)
        assert reply_of(response) is None, text  # Twilio itself confirms the opt-out
        assert await opt_outs.is_opted_out("default", number), text
        # Nothing answers afterwards either.
        assert reply_of(await sms_server.text("hello?", from_=number)) is None, text
    assert sms_server.chats() == []
    assert sms_server.twilio.message_requests() == []


@pytest.mark.parametrize("text", ["Opt out", "opt-out", "STOP ALL", "Un-subscribe"])
async def test_spaced_and_hyphenated_opt_outs_count(sms_server: SmsServer, text: str) -> None:
    assert reply_of(await sms_server.text(text)) is None
    assert await sms_server.runtime.opt_outs.is_opted_out("default", CUSTOMER)


async def test_stop_inside_a_sentence_is_an_ordinary_message(sms_server: SmsServer) -> None:
    # Twilio only filters whole-message keywords; the agent reads the rest like any text.
    reply = reply_of(await sms_server.text("please stop calling me"))
    assert reply is not None
    assert not await sms_server.runtime.opt_outs.is_opted_out("default", CUSTOMER)
    assert len(sms_server.chats()) == 1


async def test_opt_out_cancels_scheduled_calls(sms_server: SmsServer) -> None:
    calls = sms_server.runtime.scheduled_calls
    due = datetime.now(UTC) + timedelta(hours=1)
    mine = await calls.add(ScheduledCall("default", CUSTOMER, due, "callback"))
    other = await calls.add(ScheduledCall("default", "+14155550199", due, "lead"))
    assert reply_of(await sms_server.text("STOP")) is None
    assert (await calls.get(mine)).status == "cancelled"  # type: ignore[union-attr]
    assert (await calls.get(other)).status == "pending"  # type: ignore[union-attr]
    opt_out = await sms_server.runtime.opt_outs.opted_out_numbers("default")
    assert opt_out == {CUSTOMER}


async def test_opt_in_restores_and_yes_is_otherwise_an_answer(sms_server: SmsServer) -> None:
    opt_outs = sms_server.runtime.opt_outs
    # Not opted out: "Yes" is an answer for the agent, not a keyword.
    assert reply_of(await sms_server.text("Yes")) is not None
    assert len(sms_server.chats()) == 1
    for word in sorted(OPT_IN):
        assert reply_of(await sms_server.text("stop")) is None
        assert await opt_outs.is_opted_out("default", CUSTOMER)
        assert reply_of(await sms_server.text(f" {word.title()}! ")) is None
        assert not await opt_outs.is_opted_out("default", CUSTOMER)
    reply = reply_of(await sms_server.text("I need a plumber"))
    assert reply is not None
    # Keywords are not part of the conversation the model reads.
    contents = [m["content"] for m in sms_server.chats()[-1]["messages"][1:]]
    assert not {"stop", " Start! ", " Yes! ", " Unstop! "} & set(contents)


async def test_help_answers_the_tenant_help_text(sms_server: SmsServer) -> None:
    for word in sorted(HELP):
        reply = reply_of(await sms_server.text(word.lower() + "?"))
        assert reply is not None
        assert reply.startswith("Default:") and "STOP" in reply
    tenants = sms_server.runtime.tenants
    tenant = await tenants.get("default")
    tenant.sms_help_text = "Acme Roofing help: call (555) 010-0200. Reply STOP to opt out."
    await tenants.save(tenant)
    assert reply_of(await sms_server.text("HELP")) == tenant.sms_help_text
    assert sms_server.chats() == []
    # Opted out: not even HELP is answered.
    await sms_server.text("STOP")
    assert reply_of(await sms_server.text("HELP")) is None


async def test_reply_being_written_when_stop_arrives_is_never_sent(
    sms_server_factory: SmsServerFactory,
) -> None:
    async with sms_server_factory(sms_reply_within_s=0.1) as server:
        server.openai.fail("chat", status=None, hang_s=0.8, times=1)
        assert reply_of(await server.text("What do you charge for a roof?")) is None
        assert reply_of(await server.text("STOP")) is None
        await until(lambda: not server.runtime.sms._tasks, 5.0, "the late reply to finish")  # type: ignore[union-attr]
        assert server.twilio.message_requests() == []
        outbound = [m for m in await server.messages() if m.direction == "outbound"]
        assert all(m.status == "canceled" for m in outbound)


async def test_carrier_block_is_recorded_as_failed(sms_server_factory: SmsServerFactory) -> None:
    async with sms_server_factory(sms_reply_within_s=0.1) as server:
        server.twilio.block(CUSTOMER)  # Twilio knows the STOP we never saw
        server.openai.fail("chat", status=None, hang_s=0.4, times=1)
        assert reply_of(await server.text("hi")) is None
        await until(lambda: len(server.twilio.message_requests()) == 1, 5.0, "send attempt")
        await until(lambda: not server.runtime.sms._tasks, 5.0, "delivery")  # type: ignore[union-attr]
        outbound = (await server.messages())[-1]
        assert (outbound.status, outbound.error_code) == ("failed", "21610")


def _call(call_sid: str, **overrides: str) -> CallInfo:
    values = {
        "call_sid": call_sid,
        "stream_sid": "MZ" + call_sid[2:],
        "tenant": "default",
        "direction": "inbound",
        "from_number": CUSTOMER,
        "to_number": "+15557654321",
        "agent": "receptionist",
        "pipeline": "cascade",
    } | overrides
    return CallInfo(**values)  # type: ignore[arg-type]


def _finish_call(server: SmsServer, call: CallInfo, caller_spoke: bool = True) -> None:
    sink = server.runtime.session_sink
    assert sink is not None
    now = datetime.now(UTC)
    sink.call_started(call, now)
    if caller_spoke:
        sink.turn(call, TurnEvent(1, "caller", "I need a roof", now, now))
    sink.call_ended(call, CallEndedEvent(now, "stream-closed"))


async def test_follow_up_sms_after_a_call(sms_server: SmsServer) -> None:
    _finish_call(sms_server, _call("CA" + "1" * 32))
    await until(lambda: len(sms_server.twilio.message_requests()) == 1, 5.0, "follow-up")
    form = sms_server.twilio.message_requests()[0].form
    assert form["To"] == CUSTOMER and form["From"] == "+15557654321"
    assert form["Body"] == (
        "Thanks for calling Acme Home Services! A project manager will be in touch within one"
        " business day. To book a free estimate yourself: https://acme-home.example.com/book"
    )
    await until(lambda: not sms_server.runtime.sms._tasks, 5.0, "stored")  # type: ignore[union-attr]
    (stored,) = await sms_server.messages()
    assert stored.direction == "outbound" and stored.message_sid is not None

    # A call nobody spoke on (no answer, a machine) gets no text.
    _finish_call(sms_server, _call("CA" + "2" * 32, from_number="+14155550177"), False)
    # An outbound call: the other party is the called number.
    outbound = _call(
        "CA" + "3" * 32,
        direction="outbound",
        from_number="+15557654321",
        to_number="+14155550188",
        agent="lead_qualifier",
    )
    _finish_call(sms_server, outbound)
    await until(lambda: len(sms_server.twilio.message_requests()) == 2, 5.0, "second follow-up")
    form = sms_server.twilio.message_requests()[1].form
    assert form["To"] == "+14155550188"
    assert form["Body"].startswith("Thanks for your time!")  # empty {first_name} tidied away


async def test_no_follow_up_to_an_opted_out_number(sms_server: SmsServer) -> None:
    assert reply_of(await sms_server.text("STOP")) is None
    _finish_call(sms_server, _call("CA" + "4" * 32))
    await until(lambda: not sms_server.runtime.sms._tasks, 5.0, "follow-up task")  # type: ignore[union-attr]
    assert sms_server.twilio.message_requests() == []
    assert [m.direction for m in await sms_server.messages()] == ["inbound"]


async def test_a_real_call_ends_with_the_follow_up_text(sms_server: SmsServer) -> None:
    """Through the voice webhook and the media websocket: the session's sink composition
    (recorder + follow-up) is what sends the text."""
    from loadtest.caller import CallerTurn, place_call
    from loadtest.fixtures import load_script
    from tests.conftest import TWILIO_TOKEN

    utterance = next(u for u in load_script() if u.id == "need")
    result = await place_call(
        sms_server.settings.public_base_url,
        [CallerTurn(utterance)],
        auth_token=TWILIO_TOKEN,
        from_number=CUSTOMER,
        hangup_wait_s=0.5,
        reply_timeout_s=10.0,
    )
    assert result.error is None, result.error
    await until(lambda: len(sms_server.twilio.message_requests()) == 1, 10.0, "follow-up text")
    form = sms_server.twilio.message_requests()[0].form
    assert form["To"] == CUSTOMER and "https://acme-home.example.com/book" in form["Body"]
    assert await sms_server.runtime.writes.flush(5.0)
    assert await sms_server.runtime.calls.get_call(result.call_sid) is not None  # recorder too


async def test_twilio_advanced_opt_out_verdict_is_honoured(sms_server: SmsServer) -> None:
    """A custom keyword configured in Twilio's Advanced Opt-Out ("ARRET") arrives with
    OptOutType=STOP: it opts out even though our own rule does not know the word."""
    from tests.sms.conftest import sms_params

    params = sms_params("Arrêt", OptOutType="STOP")
    assert reply_of(await sms_server.post("/twilio/sms", params)) is None
    assert await sms_server.runtime.opt_outs.is_opted_out("default", CUSTOMER)
    params = sms_params("Reprendre", OptOutType="START")
    assert reply_of(await sms_server.post("/twilio/sms", params)) is None
    assert not await sms_server.runtime.opt_outs.is_opted_out("default", CUSTOMER)
    assert sms_server.chats() == []
