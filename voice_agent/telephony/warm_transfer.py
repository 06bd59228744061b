"""Warm transfer to a person: the caller waits while the human's phone rings; when the human
answers they hear a one-sentence summary (the ``<Number url>`` whisper), then the two are
bridged. If the human does not answer (or is busy), the ``<Dial action>`` callback tries a
cold transfer once (no whisper: their own voicemail may take it), then apologises and hangs
up.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from voice_agent.telephony.rest import TwilioRest, TwilioRestError
from voice_agent.telephony.tokens import CallTokenStore
from voice_agent.telephony.twiml import DEFAULT_SAY_LANGUAGE

log = logging.getLogger(__name__)

WHISPER_PATH = "/twilio/whisper"
TRANSFER_PATH = "/twilio/transfer"
#: DialCallStatus values that mean the human never came on the line.
UNANSWERED = frozenset({"no-answer", "busy", "failed", "canceled"})
_SUMMARY_TTL_S = 600.0
_MAX_SUMMARY = 400


def _url(base: str, path: str, **params: str) -> str:
    return f"{base}{path}?{urlencode(params)}"


def warm_dial(number: str, *, action_url: str, whisper_url: str, ring_s: int) -> str:
    response = VoiceResponse()
    dial = response.dial(action=action_url, timeout=ring_s)
    dial.number(number, url=whisper_url)
    return response.to_xml()


def cold_dial(number: str, *, action_url: str, ring_s: int) -> str:
    response = VoiceResponse()
    response.dial(number, action=action_url, timeout=ring_s)
    return response.to_xml()


def whisper(summary: str, language: str = DEFAULT_SAY_LANGUAGE) -> str:
    """What the person taking the call hears; ``language`` is a <Say> locale (the caller's
    words in the summary are in the agent's language)."""
    response = VoiceResponse()
    response.say(summary, language=language)
    return response.to_xml()


def after_dial(
    dial_status: str,
    stage: str,
    number: str,
    apology: str,
    action_url: str,
    ring_s: int,
    language: str = DEFAULT_SAY_LANGUAGE,
) -> str:
    """TwiML for the ``<Dial action>`` callback: done, a cold retry, or an apology."""
    if dial_status not in UNANSWERED:
        response = VoiceResponse()
        response.hangup()  # the bridged call is over
        return response.to_xml()
    if stage == "warm" and number:
        return cold_dial(number, action_url=action_url, ring_s=ring_s)
    response = VoiceResponse()
    response.say(apology, language=language)
    response.hangup()
    return response.to_xml()


class WarmTransfer:
    """Redirects a live call (ending its media stream) into the warm-transfer ``<Dial>``."""

    def __init__(
        self, rest: TwilioRest | None, tokens: CallTokenStore, public_base_url: str, ring_s: int
    ) -> None:
        self._rest = rest
        self._tokens = tokens
        self._base = public_base_url
        self._ring_s = ring_s

    def action_url(self, number: str, agent: str, stage: str, tenant: str = "") -> str:
        params = {"number": number, "agent": agent, "stage": stage}
        if tenant:  # the fallback apology is the tenant's own agent's (#13)
            params["tenant"] = tenant
        return _url(self._base, TRANSFER_PATH, **params)

    async def transfer(
        self,
        call_sid: str,
        number: str,
        summary: str,
        agent: str,
        tenant: str = "",
        language: str = "en",
    ) -> bool:
        """True when Twilio took the new TwiML; False leaves the call to the caller's hangup."""
        if self._rest is None:
            log.error("call %s: transfer needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", call_sid)
            return False
        # The summary stays on our side: the whisper URL carries only a single-use token.
        token = await self._tokens.issue(
            {
                "summary": summary[:_MAX_SUMMARY],
                "call_sid": call_sid,
                "language": language,
            },
            ttl_s=_SUMMARY_TTL_S,
        )
        document = warm_dial(
            number,
            action_url=self.action_url(number, agent, "warm", tenant),
            whisper_url=_url(self._base, WHISPER_PATH, t=token),
            ring_s=self._ring_s,
        )
        try:
            await self._rest.update_twiml(call_sid, document)
        except TwilioRestError as exc:
            log.error("call %s: warm transfer to %s failed: %s", call_sid, number, exc)
            return False
        return True
