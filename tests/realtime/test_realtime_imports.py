"""The realtime session is conversation core: it reaches the model through the
speech-to-speech protocol only, never the SDK or the socket library."""

from __future__ import annotations

from pathlib import Path

import voice_agent.conversation.realtime_session as realtime_session
import voice_agent.providers.speech_to_speech as protocol
from tests.imports import imported_modules

FORBIDDEN = ("openai", "websockets", "starlette", "twilio")


def test_the_realtime_session_imports_no_sdk_or_socket() -> None:
    for module in (realtime_session, protocol):
        assert module.__file__ is not None
        imported = imported_modules(Path(module.__file__))
        assert imported, module.__name__
        bad = {n for n in imported if n.split(".")[0] in FORBIDDEN}
        assert not bad, (module.__name__, bad)
