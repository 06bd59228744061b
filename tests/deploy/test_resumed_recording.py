"""A resumed call's recording goes on in the call's one file: the part after a resume
starts from what the earlier part left (a finished file, or the partial of a worker that
was SIGKILLed mid-write), silence up to where the call resumed, then its own audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from media.recording import RATE, CallRecording
from voice_agent.recordings import RecordingFile

TONE = (np.sin(np.arange(RATE * 3) / 3.0) * 8000).astype(np.int16)
_KILLED_WRITER = """
import os, signal, sys
import numpy as np
import soundfile
tone = (np.sin(np.arange(8000 * 3) / 3.0) * 8000).astype(np.int16)
f = soundfile.SoundFile(sys.argv[1], "w", 8000, 2, "PCM_16", format="FLAC")
f.write(np.stack([tone, tone], axis=1))
os.kill(os.getpid(), signal.SIGKILL)
"""


def resumed_part(path: Path, part: int, lead: int, seconds: float) -> None:
    """The resumed worker's part: `seconds` of caller audio (a loud square wave)."""
    recording = CallRecording()
    frame = bytes([0x00, 0x80] * 80)  # mu-law extremes: loud
    for _ in range(round(seconds * 50)):
        recording.caller(frame)
    file = RecordingFile(path, part, lead)
    file._finish(recording, recording.samples)


def test_a_part_after_a_killed_worker_goes_on_from_its_partial(tmp_path: Path) -> None:
    path = tmp_path / "CA1.flac"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path.with_suffix(".partial"))])
    lead = RATE * 5
    resumed_part(path, 1, lead, 2.0)
    audio, rate = soundfile.read(path, dtype="int16")
    assert rate == RATE and len(audio) == lead + 2 * RATE
    salvaged = np.flatnonzero(np.abs(audio[:lead, 1].astype(np.int32)) > 1000)
    # The killed writer's whole frames (the encoder's last two died with it: about a second).
    assert salvaged.size and salvaged[-1] >= len(TONE) - 2 * 4096, salvaged[-1:]
    assert not audio[len(TONE) : lead].any()  # silence up to the resume
    assert np.abs(audio[lead:, 0].astype(np.int32)).min() > 1000  # then the resumed part
    assert list(tmp_path.glob("*.partial")) == []  # its audio is in the file now


def test_a_second_resume_goes_on_from_the_first_resumed_part(tmp_path: Path) -> None:
    path = tmp_path / "CA2.flac"
    resumed_part(path, 1, RATE, 1.0)  # finished: the stream dropped, the worker lived
    resumed_part(path, 2, RATE * 3, 1.0)
    audio, _ = soundfile.read(path, dtype="int16")
    loud = np.abs(audio[:, 0].astype(np.int32)) > 1000
    assert len(audio) == RATE * 4
    assert not loud[:RATE].any() and loud[RATE : 2 * RATE].all()
    assert not loud[2 * RATE : 3 * RATE].any() and loud[3 * RATE :].all()


def test_with_no_earlier_part_on_this_disk_the_part_keeps_its_place(tmp_path: Path) -> None:
    # Another host's disk held the first part: silence, then the resumed part where it was.
    path = tmp_path / "CA3.flac"
    resumed_part(path, 1, RATE * 2, 1.0)
    audio, _ = soundfile.read(path, dtype="int16")
    assert len(audio) == RATE * 3 and not audio[: RATE * 2].any()
    assert np.abs(audio[RATE * 2 :, 0].astype(np.int32)).min() > 1000


def test_an_unreadable_earlier_part_is_silence(tmp_path: Path) -> None:
    path = tmp_path / "CA4.flac"
    path.with_suffix(".partial").write_bytes(b"not a flac file")
    resumed_part(path, 1, RATE, 1.0)
    audio, _ = soundfile.read(path, dtype="int16")
    assert len(audio) == RATE * 2 and not audio[:RATE].any()


def test_the_first_part_is_unchanged_by_the_resume_machinery(tmp_path: Path) -> None:
    path = tmp_path / "CA5.flac"
    other = tmp_path / "CA5.r1.partial"
    other.write_bytes(b"")  # a later part's partial is never read by part 0
    resumed_part(path, 0, 0, 1.0)
    audio, _ = soundfile.read(path, dtype="int16")
    assert len(audio) == RATE and other.exists()
