"""Coverage-guided fuzzing (atheris, libFuzzer) of what a Media Stream frame goes through:
the parser, the endpoint's per-frame dispatch and the caller-audio listener (mu-law
decode, VAD, endpointing).

The one property: nothing but `MalformedMessage` (handled by the endpoint) ever escapes.
Run it by hand for as long as you like:

    .venv/bin/python tests/fuzz/media_frames_atheris.py -max_total_time=600 corpus/

tests/fuzz/test_atheris.py runs it briefly in CI, starting from seeds made of Twilio's
documented frames (tests/fuzz/seeds.py).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(
    include=["voice_agent.telephony", "media", "voice_agent.conversation.listener"]
):
    from voice_agent.conversation.listener import Listener
    from voice_agent.telephony.media_socket import _CallFrames
    from voice_agent.telephony.protocol import MalformedMessage, parse


class _Session:
    """The endpoint's session seam, with the real Listener behind `on_audio`."""

    def __init__(self) -> None:
        self.listener = Listener(
            lambda _at: None, lambda _speech: None, start_ms=200, silence_ms=400, aggressiveness=2
        )

    def on_audio(self, ulaw: bytes) -> None:
        self.listener.push(ulaw)

    def on_mark(self, name: str) -> None:
        assert isinstance(name, str)

    def on_dtmf(self, digit: str) -> None:
        assert isinstance(digit, str) and len(digit) == 1

    async def start(self, started_at: float | None = None) -> None:  # pragma: no cover
        return None

    async def end(self, reason: str | None = None) -> None:  # pragma: no cover
        return None


_frames = _CallFrames(on_malformed=None)
_frames.session = _Session()  # type: ignore[assignment]


def one_input(data: bytes) -> None:
    for frame in (data, data.decode("utf-8", "replace")):
        try:
            parse(frame)
        except MalformedMessage:
            pass
        _frames.take(frame)  # catches MalformedMessage itself; anything else is a bug


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
