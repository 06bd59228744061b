"""Per-frame cost of the inbound and outbound audio work.

Timed only with ``--benchmark-enable``; by default each body runs once as a smoke test.
"""

from __future__ import annotations

import pytest

from loadtest.fixtures import Utterance
from media import mulaw
from media.endpoint import Endpointer
from media.vad import VoiceActivity

FRAME = 160


@pytest.mark.benchmark(group="media-frame")
def test_bench_inbound_frame_decode_vad_endpoint(benchmark, utterances: list[Utterance]) -> None:  # type: ignore[no-untyped-def]
    audio = utterances[1].audio
    frames = [audio[i : i + FRAME] for i in range(0, len(audio) - FRAME + 1, FRAME)]
    vad = VoiceActivity()
    endpointer = Endpointer()
    position = iter(range(1 << 62))

    def one_frame() -> None:
        # Cycle through the whole utterance: speech and silence frames cost differently.
        endpointer.push(vad.is_speech(mulaw.decode(frames[next(position) % len(frames)])))

    benchmark(one_frame)
    assert endpointer.frame_index >= 1


@pytest.mark.benchmark(group="media-frame")
def test_bench_outbound_frame_encode(benchmark, utterances: list[Utterance]) -> None:  # type: ignore[no-untyped-def]
    pcm = mulaw.decode(utterances[1].audio[8000 : 8000 + FRAME])
    encoded = benchmark(mulaw.encode, pcm)
    assert len(encoded) == FRAME
    assert encoded == mulaw.encode(pcm.copy())
