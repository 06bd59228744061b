"""The lead's call on the offline pipeline: Piper says the lead's name in the greeting it
made while the phone rang, and bundled Whisper hears it on the line."""

from __future__ import annotations

from collections.abc import Callable

from loadtest.standins.twilio_rest import TwilioRestStandin
from media import mulaw
from tests.app.twilio_side import open_stream, stream_from_twiml, until
from tests.conftest import TWILIO_ACCOUNT
from tests.outbound.conftest import FROM_NUMBER, LEAD_SECRET, Clock, lead_body, post_lead
from voice_agent.demo import running_server
from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings


async def test_the_lead_hears_their_name(
    offline_pipeline: Pipeline,
    make_settings: Callable[..., Settings],
    twilio: TwilioRestStandin,
    clock: Clock,
) -> None:
    settings = make_settings(
        twilio_account_sid=TWILIO_ACCOUNT,
        twilio_api_base_url=twilio.base_url,
        twilio_from_number=FROM_NUMBER,
        lead_webhook_secret=LEAD_SECRET,
    )
    assert settings.pipeline == "offline"
    async with running_server(settings, pipeline=offline_pipeline, now=clock) as runtime:
        response = await post_lead(settings, lead_body(firstName="Maria"))
        call_sid = response.json()["call_sid"]
        _, document = await twilio.answer(call_sid)
        stream = await open_stream(settings, call_sid)
        await stream.start(stream_from_twiml(document)[1]["token"])
        registry = runtime.metrics.registry
        await until(
            lambda: registry.get_sample_value("voice_agent_turns_total", {"role": "agent"}) == 1,
            within_s=20.0,
            what="the greeting, heard whole",
        )
        await stream.stop()
        await until(stream.closed.is_set)

    heard = await offline_pipeline.stt.transcribe(mulaw.decode(bytes(stream.agent_audio)), 8000)
    words = heard.text.lower()
    assert "maria" in words, heard.text
    assert "acme" in words or "form" in words, heard.text
