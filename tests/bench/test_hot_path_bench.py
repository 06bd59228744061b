"""Per-frame cost of the inbound path (run with --benchmark-enable; off by default).

A call receives 50 frames a second; at 200 calls per core that is 10,000 frames a second,
so the whole per-frame path must stay within a few tens of microseconds.
"""

from __future__ import annotations

import itertools

import pytest

from loadtest.fixtures import load_script
from voice_agent.conversation.listener import Listener
from voice_agent.telephony.protocol import Outbound, parse

FRAME = 160


def _frames() -> list[bytes]:
    # Trailing silence so the last utterance, too, ends within the endpointing window.
    audio = b"".join(u.audio for u in load_script()) + b"\xff" * 8 * 600
    return [audio[i : i + FRAME] for i in range(0, len(audio) - FRAME + 1, FRAME)]


@pytest.fixture(scope="module")
def media_messages() -> list[str]:
    out = Outbound("MZ" + "0" * 32)
    return [
        out.media(frame).replace(
            '"media":{',
            '"sequenceNumber":"5","media":{"track":"inbound","chunk":"3","timestamp":"60",',
        )
        for frame in _frames()
    ]


def test_inbound_frame_path(benchmark: pytest.FixtureRequest, media_messages: list[str]) -> None:
    """Twilio's JSON frame to a VAD/endpointing decision: parse, decode, VAD, endpoint."""
    turns: list[object] = []
    listener = Listener(
        lambda _at: None, turns.append, start_ms=120, silence_ms=500, aggressiveness=2
    )
    messages = itertools.cycle(media_messages)

    def one_frame() -> None:
        event = parse(next(messages))
        listener.push(event.payload)  # type: ignore[union-attr]

    # One pass over the fixtures first: the path measured must be the one that finds turns.
    for _ in media_messages:
        one_frame()
    assert len(turns) == len(load_script()), "each fixture utterance must end one caller turn"
    benchmark(one_frame)


def test_outbound_chunk_encoding(benchmark: pytest.FixtureRequest) -> None:
    """One 160 ms chunk of agent audio to a media message plus its mark."""
    out = Outbound("MZ" + "0" * 32)
    chunk = b"\x7f" * 1280

    def one_chunk() -> tuple[str, str]:
        return out.media(chunk), out.mark("42")

    media, mark = benchmark(one_chunk)
    assert media.startswith('{"event":"media"') and '"name":"42"' in mark
