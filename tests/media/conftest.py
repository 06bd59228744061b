from __future__ import annotations

from collections.abc import Callable

import pytest

from loadtest.fixtures import Utterance, load_script
from media import mulaw
from media.endpoint import Endpointer, EndpointEvent
from media.vad import VoiceActivity

FRAME_MS = 20
FRAME_SAMPLES = 8000 * FRAME_MS // 1000

DetectTurns = Callable[[bytes], list[EndpointEvent]]


@pytest.fixture(scope="session")
def utterances() -> list[Utterance]:
    return load_script()


@pytest.fixture
def detect_turns() -> DetectTurns:
    """Runs mu-law audio through decode, VAD and endpointing the way a call does,
    followed by a second of line silence so a trailing turn can end."""

    def run(ulaw: bytes) -> list[EndpointEvent]:
        vad = VoiceActivity(aggressiveness=2, sample_rate=8000)
        endpointer = Endpointer(frame_ms=FRAME_MS, start_ms=100, silence_ms=500)
        silence = mulaw.encode(mulaw.decode(b"\xff" * FRAME_SAMPLES))
        events: list[EndpointEvent] = []
        usable = len(ulaw) - len(ulaw) % FRAME_SAMPLES
        frames = [ulaw[i : i + FRAME_SAMPLES] for i in range(0, usable, FRAME_SAMPLES)]
        for frame in frames + [silence] * (1000 // FRAME_MS):
            event = endpointer.push(vad.is_speech(mulaw.decode(frame)))
            if event is not None:
                events.append(event)
        return events

    return run
