"""The portal's voice, language, turn-taking, tools and links fields (#13): edited in the
draft form, refused field by field with the loader's message, and used by the next real call (the
TTS voice the greeting and replies are asked for, the language speech-to-text is told
and the model is told to answer in, the endpointing silence)."""

from __future__ import annotations

import html

import httpx
import pytest

from loadtest.fixtures import load_script
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import (
    SILENCE_FRAME,
    new_call_sid,
    open_stream,
    post_voice,
    stream_from_twiml,
    until,
    voice_params,
)
from tests.dashboard.conftest import ACME_NUMBER, ACME_STAFF, AsUser, Site, csrf_of, login
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings

AGENT = "/portal/acme/agents/receptionist"


async def test_form_shows_and_saves_speech_and_turn_taking(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    page = await staff.get(AGENT)
    assert 'id="field-language"' in page.text and 'value="es"' in page.text
    assert 'id="voice-cascade"' in page.text and 'id="voice-offline"' in page.text
    assert "Voice on the cascade pipeline (this server)" in page.text
    assert 'id="turn-silence_ms"' in page.text and 'placeholder="0 to 5000"' in page.text
    token = csrf_of(page.text)
    saved = await staff.post(
        AGENT + "/draft",
        data={
            "csrf_token": token,
            "language": "fr",
            "voices.cascade": "coral",
            "voices.realtime": "",
            "voices.offline": "",
            "turn_taking": "1",
            "turn_taking.text_aware": "on",
            "turn_taking.resume_on_backchannel": "on",  # its default: not stored
            # early_llm unticked: on by default, so stored as off
            "turn_taking.silence_ms": "700",
            "turn_taking.interruption_min_ms": "250",
            "turn_taking.speculation_ms": "",
            "turn_taking.min_wait_ms": "300",
            "turn_taking.max_wait_ms": "1200",
            "action": "save",
        },
    )
    assert saved.status_code == 303, saved.text
    agent = await site.runtime.agent_studio.repo.get("acme", "receptionist")  # type: ignore[union-attr]
    data = (await site.runtime.agent_studio.repo.draft(agent)).data  # type: ignore[union-attr]
    assert data["language"] == "fr" and data["voices"] == {"cascade": "coral"}
    assert data["turn_taking"] == {
        "text_aware": True,
        "early_llm": False,
        "silence_ms": 700,
        "interruption_min_ms": 250,
        "min_wait_ms": 300,
        "max_wait_ms": 1200,
    }
    page = await staff.get(AGENT)
    assert '<option value="fr" selected>' in page.text
    assert '<option value="coral" selected>' in page.text
    assert 'id="turn-text_aware" checked' in page.text and 'value="700"' in page.text
    assert 'id="turn-resume_on_backchannel" checked' in page.text
    assert 'id="turn-early_llm">' in page.text

    # The boxes in their default state and the numbers emptied: back to the defaults
    # (the keys are removed).
    await staff.post(
        AGENT + "/draft",
        data={
            "csrf_token": token,
            "language": "",
            "voices.cascade": "",
            "turn_taking": "1",
            "turn_taking.resume_on_backchannel": "on",
            "turn_taking.early_llm": "on",
            **{f"turn_taking.{k}": "" for k in ("silence_ms", "interruption_min_ms")},
            **{f"turn_taking.{k}": "" for k in ("speculation_ms", "min_wait_ms", "max_wait_ms")},
            "action": "save",
        },
    )
    data = (await site.runtime.agent_studio.repo.draft(agent)).data  # type: ignore[union-attr]
    assert "language" not in data and "voices" not in data and "turn_taking" not in data


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"language": "klingon"}, "language: 'klingon' is not a supported language code"),
        ({"voices.cascade": "bogus"}, "voices.cascade: 'bogus' is not a cascade voice"),
        ({"voices.offline": "<b>x</b>"}, "voices.offline: '<b>x</b>' is not a voice name"),
        (
            {"turn_taking": "1", "turn_taking.silence_ms": "soon"},
            "turn_taking.silence_ms: must be an integer in [0, 5000]",
        ),
        (
            {"turn_taking": "1", "turn_taking.interruption_min_ms": "-5"},
            "turn_taking.interruption_min_ms: must be an integer in [0, 2000]",
        ),
        (
            {
                "turn_taking": "1",
                "turn_taking.min_wait_ms": "900",
                "turn_taking.max_wait_ms": "400",
            },
            "turn_taking.min_wait_ms: must not exceed max_wait_ms",
        ),
    ],
)
async def test_bad_speech_and_turn_fields_are_refused_by_name(
    site: Site, as_user: AsUser, fields: dict[str, str], message: str
) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get(AGENT)).text)
    refused = await staff.post(
        AGENT + "/draft", data={"csrf_token": token, "action": "publish", **fields}
    )
    assert refused.status_code == 400
    assert message in html.unescape(refused.text)
    assert "<b>x</b>" not in refused.text  # shown as typed, escaped
    # Nothing stored, nothing published: calls still run the template.
    assert site.runtime.agent_for("acme", "receptionist")[1] is None


async def test_the_next_call_uses_the_published_voice_language_and_silence(
    served_with_number: tuple[Settings, Runtime], standin: StandinOpenAI
) -> None:
    settings, runtime = served_with_number
    async with httpx.AsyncClient(base_url=settings.public_base_url) as client:
        assert (await login(client, ACME_STAFF)).status_code == 303
        token = csrf_of((await client.get(AGENT)).text)
        published = await client.post(
            AGENT + "/draft",
            data={
                "csrf_token": token,
                "greeting": "Hola, gracias por llamar a {business_name}.",
                "language": "es",
                "voices.cascade": "coral",
                "turn_taking": "1",
                "turn_taking.silence_ms": "640",
                "action": "publish",
            },
        )
        assert published.status_code == 303, published.text
    agent, version = runtime.agent_for("acme", "receptionist")
    assert version == 1 and agent is not None and agent.voice == "coral"
    # The greeting was synthesised on publish, in the new voice, before any call.
    greeting = "Hola, gracias por llamar a Acme Home Services."
    spoken = [r.body for r in standin.recorded("speech") if r.body["input"] == greeting]
    assert spoken and {b["voice"] for b in spoken} == {"coral"}
    standin.requests.clear()

    standin.add_script("Claro, ¿en qué le puedo ayudar?")
    call_sid = new_call_sid()
    answer = await post_voice(settings, voice_params(call_sid, To=ACME_NUMBER))
    stream = await open_stream(settings, call_sid)
    try:
        await stream.start(stream_from_twiml(answer.text)[1]["token"])
        await until(lambda: len(stream.agent_audio) > 0, what="the greeting")
        heard = len(stream.agent_audio)
        await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
        await until(lambda: len(stream.agent_audio) > heard, 10.0, "the reply")
        await stream.stop()
    finally:
        await stream.aclose()
    transcriptions = standin.recorded("transcriptions")
    assert transcriptions and {r.body["language"] for r in transcriptions} == {"es"}
    system = standin.recorded("chat")[0].body["messages"][0]
    assert system["role"] == "system" and "Always reply in Spanish" in system["content"]
    replies = standin.recorded("speech")
    assert replies and {r.body["voice"] for r in replies} == {"coral"}
    call = runtime.agent_for("acme", "receptionist")[0]
    assert call is not None and call.turn_taking.silence_ms == 640


async def test_tools_and_links_in_the_form(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    page = await staff.get(AGENT)
    assert 'id="tool-transfer_call" checked' in page.text
    assert 'id="sms_tool-send_link" checked' in page.text
    assert 'value="https://acme-home.example.com/book" id="link-booking"' in page.text
    token = csrf_of(page.text)
    base = {"csrf_token": token, "tools": "1", "action": "save"}
    # Transfer off while the transfer offer is still said: refused, naming both.
    refused = await staff.post(
        AGENT + "/draft",
        data=base | {"tool.end_call": "on", "sms_tool.hand_off": "on"},
    )
    assert refused.status_code == 400
    assert "transfer_offer: set, but 'transfer_call' is not in tools" in html.unescape(refused.text)
    bad_link = await staff.post(
        AGENT + "/draft",
        data=base
        | {"tool.end_call": "on", "tool.transfer_call": "on", "link.booking": "javascript:x"},
    )
    assert bad_link.status_code == 400
    assert "links.booking: 'javascript:x' is not an http(s) URL" in html.unescape(bad_link.text)
    gone = await staff.post(
        AGENT + "/draft",
        data=base
        | {"tool.end_call": "on", "tool.transfer_call": "on", "sms_tool.send_link": "on"}
        | {"link.booking": ""},
    )
    assert gone.status_code == 400  # send_link with no link left to send
    assert "sms_tools: 'send_link' needs at least one entry in [links]" in html.unescape(gone.text)
    used = await staff.post(
        AGENT + "/draft",
        data=base | {"tool.end_call": "on", "tool.transfer_call": "on", "link.booking": ""},
    )
    assert used.status_code == 400  # the follow-up SMS still says {booking}
    assert "followup_sms: placeholder {booking} is not declared" in html.unescape(used.text)

    saved = await staff.post(
        AGENT + "/draft",
        data=base
        | {"tool.end_call": "on", "tool.transfer_call": "on", "sms_tool.hand_off": "on"}
        | {"link.booking": "https://acme.example.com/visit"},
    )
    assert saved.status_code == 303, saved.text
    agent = await site.runtime.agent_studio.repo.get("acme", "receptionist")  # type: ignore[union-attr]
    data = (await site.runtime.agent_studio.repo.draft(agent)).data  # type: ignore[union-attr]
    assert data["tools"] == ["end_call", "transfer_call"]
    assert data["sms_tools"] == ["hand_off"]
    assert data["links"] == {"booking": "https://acme.example.com/visit"}
