"""Whole calls over the real media websocket (cascade, the OpenAI stand-in through the
openai SDK), with Twenty stood in: a caller the CRM knows is greeted by the CRM person's
name, and a finished call's analysis becomes a note on its person, here and in Twenty
(linked through a noteTarget)."""

from __future__ import annotations

from collections.abc import Callable

from crm_client import PersonInput
from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import Utterance
from loadtest.standins.twenty_server import TwentyStandin
from tests.conftest import TWILIO_TOKEN
from tests.crm.test_lead_to_twenty import wait_for
from voice_agent.demo import running_server
from voice_agent.settings import Settings

CALLER = "+15551230091"


def script(utterances: dict[str, Utterance], *ids: str) -> list[CallerTurn]:
    return [CallerTurn(utterances[i]) for i in ids]


async def test_a_caller_the_crm_knows_is_greeted_by_the_persons_name(
    cascade_settings: Callable[..., Settings], utterances: dict[str, Utterance]
) -> None:
    settings = cascade_settings(caller_greeting_wait_ms=3000)
    async with running_server(settings) as runtime:
        assert runtime.crm is not None
        # Known to the CRM only: no lead, no earlier call.
        await runtime.crm.people.upsert("default", PersonInput("Dana", "Whitfield", phone=CALLER))
        call = await place_call(
            settings.public_base_url,
            script(utterances, "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert call.error is None
        assert await runtime.writes.flush(5.0)
        stored = await runtime.calls.get_call(call.call_sid)
        assert stored is not None
        assert stored.turns[0].role == "agent" and "Dana Whitfield" in stored.turns[0].text


async def test_a_finished_call_becomes_a_note_on_its_person_here_and_in_twenty(
    cascade_settings: Callable[..., Settings],
    utterances: dict[str, Utterance],
    twenty: TwentyStandin,
) -> None:
    twenty.latency_s = 0.05
    settings = cascade_settings(
        caller_greeting_wait_ms=3000,
        twenty_api_url=twenty.base_url,
        twenty_api_key=twenty.api_key,
    )
    async with running_server(settings) as runtime:
        assert runtime.analysis is not None and runtime.crm is not None
        first = await place_call(
            settings.public_base_url,
            script(utterances, "greeting_reply", "need", "budget", "timing", "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert first.error is None
        assert await runtime.analysis.idle(20.0)
        person = await runtime.crm.people.find("default", phone=CALLER)
        assert person is not None and person.name == "Sarah Johnson"  # the name the call gave
        [note] = await runtime.crm.people.notes(int(person.id))
        assert note.key == f"call:{first.call_sid}" and note.fields["outcome"] == "qualified"
        assert "five thousand dollars" in note.body
        await wait_for(lambda: bool(twenty.note_targets))
        [theirs] = twenty.people.values()
        assert theirs["name"] == {"firstName": "Sarah", "lastName": "Johnson"}
        assert theirs["phones"]["primaryPhoneNumber"] == "5551230091"
        [linked] = twenty.notes_of(theirs["id"])
        assert "qualified" in linked["title"]
        assert "five thousand dollars" in linked["bodyV2"]["markdown"]
        # And next time they are greeted by the name the CRM now holds.
        second = await place_call(
            settings.public_base_url,
            script(utterances, "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert second.error is None
        assert await runtime.writes.flush(5.0)
        again = await runtime.calls.get_call(second.call_sid)
        assert again is not None and "Sarah Johnson" in again.turns[0].text
