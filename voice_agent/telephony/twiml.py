"""The few TwiML documents the agent answers with, built with twilio's own builders."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.twiml.voice_response import VoiceResponse

__all__ = ["MAX_PARAMETER_CHARS", "connect_stream", "dial", "hangup", "say_and_hangup"]

# Twilio: name + value of each <Parameter> must stay under 500 characters (§1.1).
MAX_PARAMETER_CHARS = 499


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


def say_and_hangup(text: str, *, voice: str | None = None, language: str | None = None) -> str:
    """Speak ``text`` with Twilio's own TTS, then end the call."""
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
