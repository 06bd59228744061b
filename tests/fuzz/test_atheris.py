"""A short coverage-guided run of the media-frame harness (tests/fuzz/media_frames_atheris.py).

libFuzzer runs in a child process: it owns the process (signals, exit code) while it runs.
Bounded by time, so CI pays about 15 s; run the harness by hand for longer searches.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
from tests.fuzz.seeds import write_seeds

HARNESS = Path(__file__).with_name("media_frames_atheris.py")
ROOT = HARNESS.parents[2]
#: Words of the wire format, so mutations reach past the JSON decoder quickly.
DICTIONARY = [
    "event", "media", "mark", "dtmf", "start", "stop", "connected", "payload", "track",
    "chunk", "timestamp", "sequenceNumber", "streamSid", "callSid", "accountSid", "name",
    "digit", "customParameters", "mediaFormat", "tracks", "encoding", "sampleRate", "channels",
]  # fmt: skip


def test_coverage_guided_frames_raise_nothing_unhandled(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_seeds(corpus)
    dictionary = tmp_path / "frames.dict"
    dictionary.write_text("".join(f'"{word}"\n' for word in DICTIONARY))
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "-max_total_time=15",
            "-max_len=8192",
            "-timeout=10",
            f"-dict={dictionary}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = done.stderr[-3000:]
    assert done.returncode == 0, report
    runs = re.search(r"Done (\d+) runs", done.stderr)
    assert runs is not None and int(runs.group(1)) > 1000, report
    print(f"atheris: {runs.group(1)} inputs, no crash")
    assert not list(tmp_path.glob("crash-*")), report
