"""The few TwiML documents the agent answers with, built with twilio's own builders."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.twiml.voice_response import VoiceResponse

__all__ = [
    "DEFAULT_SAY_LANGUAGE",
    "MAX_PARAMETER_CHARS",
    "connect_stream",
    "dial",
    "hangup",
    "say_and_hangup",
    "say_language",
]

# Twilio: name + value of each <Parameter> must stay under 500 characters (§1.1).
MAX_PARAMETER_CHARS = 499
#: What <Say> speaks when the agent's language is unknown or not in SAY_LOCALES.
DEFAULT_SAY_LANGUAGE = "en-US"
#: An agent's ISO 639-1 language -> the locale Twilio's <Say> is told. A bare code is
#: not enough: <Say> wants a locale, and without one it reads any text as US English.
#: Listed: the locales of Twilio's built-in voices; other languages get the default.
SAY_LOCALES: dict[str, str] = {
    "en": "en-US", "es": "es-ES", "fr": "fr-FR", "de": "de-DE", "it": "it-IT",
    "pt": "pt-BR", "nl": "nl-NL", "pl": "pl-PL", "ru": "ru-RU", "sv": "sv-SE",
    "da": "da-DK", "no": "nb-NO", "fi": "fi-FI", "ja": "ja-JP", "ko": "ko-KR",
    "zh": "zh-CN", "ca": "ca-ES",
}  # fmt: skip


def say_language(code: str | None) -> str:
    """The <Say> locale for an agent's language code ("es" -> "es-ES"); a code that
    already names a locale ("es-MX") is kept."""
    if not code:
        return DEFAULT_SAY_LANGUAGE
    code = code.strip()
    if "-" in code:
        return code
    return SAY_LOCALES.get(code.lower(), DEFAULT_SAY_LANGUAGE)


def connect_stream(
    stream_url: str,
    parameters: Mapping[str, str],
    status_callback: str | None = None,
    redirect: str | None = None,
) -> str:
    """``<Connect><Stream url>`` with one ``<Parameter>`` per item: a bidirectional stream.

    Data travels in ``<Parameter>`` elements because Twilio drops or chokes on a query
    string in the stream URL (error 31920); a non-``wss`` scheme is error 31922.
    """
    parts = urlsplit(stream_url)
    if parts.scheme and parts.scheme != "wss":
        raise ValueError(f"stream url must use wss://, got {parts.scheme!r}")
    if parts.query or parts.fragment or "?" in stream_url:
        raise ValueError("stream url must not carry a query string; use parameters")
    for name, value in parameters.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise ValueError(f"parameter {name!r} must be a non-empty str name with a str value")
        if len(name) + len(value) > MAX_PARAMETER_CHARS:
            raise ValueError(f"parameter {name!r}: name + value must be under 500 characters")

    response = VoiceResponse()
    stream = response.connect().stream(url=stream_url, status_callback=status_callback)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    if redirect is not None:
        # Where Twilio goes when the stream ends: a dropped stream is resumed from there.
        response.redirect(redirect, method="POST")
    return response.to_xml()


def say_and_hangup(
    text: str, *, voice: str | None = None, language: str = DEFAULT_SAY_LANGUAGE
) -> str:
    """Speak ``text`` with Twilio's own TTS, then end the call. ``language`` is a <Say>
    locale (see say_language)."""
    response = VoiceResponse()
    response.say(text, voice=voice, language=language)
    response.hangup()
    return response.to_xml()


def dial(number: str, caller_id: str | None = None, timeout: int = 20) -> str:
    """Transfer the caller to ``number``; ``timeout`` is the ring time in seconds."""
    if not number:
        raise ValueError("number must not be empty")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    response = VoiceResponse()
    response.dial(number, caller_id=caller_id, timeout=timeout)
    return response.to_xml()


def hangup() -> str:
    """End the call (a resume of a call the agent ended on purpose)."""
    response = VoiceResponse()
    response.hangup()
    return response.to_xml()
