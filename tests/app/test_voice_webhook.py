"""POST /twilio/voice: only Twilio (a good signature over the exact body) gets a stream."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from tests.app.conftest import Served
from tests.app.twilio_side import (
    new_call_sid,
    post_voice,
    sign,
    stream_from_twiml,
    voice_params,
)
from voice_agent.demo import running_server
from voice_agent.settings import Settings


async def test_signed_call_gets_a_stream_with_a_token(served: Served) -> None:
    response = await post_voice(served.settings, voice_params(new_call_sid()))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    url, parameters = stream_from_twiml(response.text)
    host = urlsplit(served.settings.public_base_url).netloc
    assert url == f"wss://{host}/twilio/media"
    assert "?" not in url
    assert len(parameters["token"]) >= 32
    assert "<Connect><Stream" in response.text


async def test_each_call_gets_its_own_token(served: Served) -> None:
    first = await post_voice(served.settings, voice_params(new_call_sid()))
    second = await post_voice(served.settings, voice_params(new_call_sid()))
    assert stream_from_twiml(first.text)[1]["token"] != stream_from_twiml(second.text)[1]["token"]


async def test_missing_signature_is_refused(served: Served) -> None:
    response = await post_voice(served.settings, voice_params(new_call_sid()), signed=False)
    assert response.status_code == 403
    assert "Stream" not in response.text


async def test_forged_signature_is_refused(served: Served) -> None:
    params = voice_params(new_call_sid())
    url = served.settings.public_base_url + "/twilio/voice"
    forged = sign(url, params, token="not-the-auth-token")
    response = await post_voice(served.settings, params, signature=forged)
    assert response.status_code == 403


async def test_signature_over_another_url_is_refused(served: Served) -> None:
    params = voice_params(new_call_sid())
    elsewhere = sign("https://attacker.example.com/twilio/voice", params)
    response = await post_voice(served.settings, params, signature=elsewhere)
    assert response.status_code == 403


async def test_tampered_body_is_refused(served: Served) -> None:
    params = voice_params(new_call_sid())
    url = served.settings.public_base_url + "/twilio/voice"
    signature = sign(url, params)
    tampered = params | {"From": "+15550000000"}
    response = await post_voice(served.settings, tampered, signature=signature)
    assert response.status_code == 403
    extra = params | {"Agent": "other"}
    response = await post_voice(served.settings, extra, signature=signature)
    assert response.status_code == 403


async def test_missing_call_sid_is_a_bad_request(served: Served) -> None:
    params = voice_params("")
    del params["CallSid"]
    response = await post_voice(served.settings, params)
    assert response.status_code == 400


async def test_validation_on_without_an_auth_token_refuses_everything(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings(twilio_auth_token=None, twilio_validate=True)
    async with running_server(settings):
        params = voice_params(new_call_sid())
        # Unsigned, or signed with the token Twilio would use: nothing can be checked.
        for signature in (None, sign(settings.public_base_url + "/twilio/voice", params)):
            response = await post_voice(settings, params, signature=signature, signed=False)
            assert response.status_code == 403


async def test_validation_off_accepts_unsigned_requests(
    cascade_settings: Callable[..., Settings],
) -> None:
    settings = cascade_settings(twilio_validate=False)
    async with running_server(settings):
        response = await post_voice(settings, voice_params(new_call_sid()), signed=False)
        assert response.status_code == 200
        assert stream_from_twiml(response.text)[1]["token"]
