"""The two-track recording buffer: caller audio back to back, agent audio where it played,
and what a clear discarded taken out again."""

from __future__ import annotations

import numpy as np

from media import mulaw
from media.recording import BLOCK, CallRecording


def _tone(samples: int, value: int = 8000) -> bytes:
    return mulaw.encode(np.full(samples, value, dtype=np.int16))


def test_caller_audio_is_continuous_across_blocks() -> None:
    recording = CallRecording()
    frame = _tone(160)
    frames = BLOCK // 160 + 10  # past the first preallocated block
    for _ in range(frames):
        recording.caller(frame)

    pcm = recording.pcm()
    assert pcm.shape == (frames * 160, 2)
    assert np.all(pcm[:, 0] == mulaw.decode(frame)[0])
    assert np.all(pcm[:, 1] == 0)


def test_agent_audio_plays_when_sent_or_after_what_is_queued() -> None:
    recording = CallRecording()
    recording.agent(_tone(800), at=1600)  # sent at 0.2 s into an idle line
    recording.agent(_tone(800, -8000), at=1700)  # sent while the first still plays

    agent = recording.pcm()[:, 1]
    assert np.all(agent[:1600] == 0)
    assert np.all(agent[1600:2400] > 0)
    assert np.all(agent[2400:3200] < 0)
    assert len(agent) == 3200


def test_a_clear_removes_what_had_not_played() -> None:
    recording = CallRecording()
    recording.agent(_tone(8000), at=0)  # one second queued
    recording.clear(at=2000)  # the caller cut in at 0.25 s
    recording.agent(_tone(400, -8000), at=4000)

    agent = recording.pcm(8000)[:, 1]
    assert np.all(agent[:2000] > 0)
    assert np.all(agent[2000:4000] == 0)
    assert np.all(agent[4000:4400] < 0)
    assert np.all(agent[4400:] == 0)


def test_pcm_pads_or_cuts_to_the_calls_length() -> None:
    recording = CallRecording()
    recording.caller(_tone(160))
    assert recording.pcm(800).shape == (800, 2)
    assert recording.pcm(80).shape == (80, 2)


def test_blocks_that_cannot_change_are_taken_and_the_rest_stays() -> None:
    from media.recording import blocks_pcm, recycle

    recording = CallRecording()
    frame = _tone(160)
    for _ in range(2 * BLOCK // 160 + 50):  # two blocks and a second of caller audio
        recording.caller(frame)
    recording.agent(_tone(800, -8000), at=BLOCK - 400)  # straddles the first boundary

    # "now" is before the end of the second block: only the first is final.
    first = recording.take_final(now=2 * BLOCK - 1)
    assert len(first) == 1 and recording.taken == BLOCK
    decoded = blocks_pcm(first)
    assert decoded.shape == (BLOCK, 2)
    assert np.all(decoded[BLOCK - 400 :, 1] < 0) and np.all(decoded[: BLOCK - 400, 1] == 0)
    # Agent audio can no longer land in taken time: it goes at the first sample not taken.
    recording.agent(_tone(160), at=10)
    rest = recording.pcm(2 * BLOCK + 8000)
    assert rest.shape == (BLOCK + 8000, 2)
    assert np.all(rest[:400, 1] < 0) and np.all(rest[400:560, 1] > 0)
    for caller, agent in first:
        recycle(caller)
        recycle(agent)
    assert recording.take_final(now=10 * BLOCK) != []  # the caller's second block
    assert recording.taken == 2 * BLOCK
