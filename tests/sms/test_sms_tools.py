"""The agent's tools by text: hand off to staff, book a call back, send a named link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from loadtest.standins.openai_server import Reply, ScriptedToolCall
from tests.sms.conftest import CUSTOMER, SmsServer, reply_of


def scripted(*replies: Reply) -> Any:
    """A model that answers each request with the next reply in turn."""
    queue = list(replies)

    def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        return queue.pop(0) if queue else Reply("Anything else?")

    return respond


async def test_hand_off_flags_the_thread_and_silences_the_agent(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("hand_off", {"reason": "wants a manager"}),)),
        Reply("A project manager will text you back shortly."),
    )
    reply = reply_of(await sms_server.text("I want to talk to a manager"))
    assert reply == "A project manager will text you back shortly."
    chats = sms_server.chats()
    assert len(chats) == 2
    tool_result = chats[1]["messages"][-1]
    assert tool_result["role"] == "tool" and "handed off" in tool_result["content"]
    assert (await sms_server.thread()).state == "handoff"

    assert reply_of(await sms_server.text("Hello? Anyone?")) is None
    assert len(sms_server.chats()) == 2  # the agent no longer answers this thread
    assert (await sms_server.messages())[-1].body == "Hello? Anyone?"


async def test_hand_off_without_words_sends_the_definition_text(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("hand_off", {"reason": "human"}),)), Reply("")
    )
    reply = reply_of(await sms_server.text("human please"))
    assert reply is not None and reply.startswith("Thanks! I've passed this to a project manager")


async def test_schedule_callback_books_a_call_within_calling_hours(sms_server: SmsServer) -> None:
    # 23:30 in San Francisco is outside the default 9:00-20:00 window: moved to 9:00 next day.
    book = ScriptedToolCall("schedule_callback", {"at": "2030-01-08T23:30", "note": "roof"})
    sms_server.openai.responder = scripted(
        Reply("", (book,)),
        Reply("Booked: we'll call you Wednesday at 9 AM."),
    )
    reply = reply_of(await sms_server.text("Call me tomorrow night at 11:30"))
    assert reply == "Booked: we'll call you Wednesday at 9 AM."
    pending = await sms_server.runtime.scheduled_calls.pending("default")
    assert len(pending) == 1
    call = pending[0]
    assert (call.to_number, call.reason, call.agent) == (CUSTOMER, "callback", "lead_qualifier")
    local = call.due_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2030, 1, 9, 9, 0)
    assert call.context is not None and call.context["note"] == "roof"
    result = sms_server.chats()[1]["messages"][-1]["content"]
    assert "outside calling hours" in result and "Wednesday January 9" in result


async def test_schedule_callback_with_an_unreadable_time_asks_again(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("schedule_callback", {"at": "teatime"}),)),
        Reply("What day and time suit you?"),
    )
    assert reply_of(await sms_server.text("call me at teatime")) == "What day and time suit you?"
    assert await sms_server.runtime.scheduled_calls.pending("default") == []
    assert sms_server.chats()[1]["messages"][-1]["content"].startswith("error:")


async def test_callback_without_a_time_is_as_soon_as_allowed(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("schedule_callback", {}),)), Reply("We'll call you soon.")
    )
    before = datetime.now(UTC)
    assert reply_of(await sms_server.text("call me")) == "We'll call you soon."
    (call,) = await sms_server.runtime.scheduled_calls.pending("default")
    assert call.due_at >= before.replace(microsecond=0)


async def test_send_link_appends_the_named_link(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("Here you go:", (ScriptedToolCall("send_link", {"name": "booking"}),)),
        Reply(""),
    )
    reply = reply_of(await sms_server.text("Can I book online?"))
    assert reply == "Here you go:\nhttps://acme-home.example.com/book"


async def test_unknown_link_is_an_error_the_model_reads(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("send_link", {"name": "coupons"}),)),
        Reply("Sorry, I don't have that link."),
    )
    assert reply_of(await sms_server.text("coupons?")) == "Sorry, I don't have that link."
    result = sms_server.chats()[1]["messages"][-1]["content"]
    assert "no link named 'coupons'" in result and "booking" in result


async def test_voice_tools_are_refused_by_text(sms_server: SmsServer) -> None:
    sms_server.openai.responder = scripted(
        Reply("", (ScriptedToolCall("end_call", {}),)), Reply("Bye for now!")
    )
    assert reply_of(await sms_server.text("bye")) == "Bye for now!"
    assert "not available" in sms_server.chats()[1]["messages"][-1]["content"]
