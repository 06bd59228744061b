"""Word error rate and time per turn of offline Whisper models on the benchmark set.

    HF_HUB_OFFLINE=1 .venv/bin/python -m loadtest.turns.stt_wer [--model NAME=DIR ...]

Each whole turn (onset to true end, as the listener would hand it over) is transcribed
by each model (CTranslate2 folders; "tiny.en" is the bundled one) on one thread, int8,
and scored against its text after normalising case, punctuation and numbers written
as digits ("555" -> "five five five"). Prints WER per voice and per noise level, and
the median and p95 time per turn; writes ``<out>/stt_wer.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from loadtest.turns.bench import load_turns
from media import mulaw

_DIGITS = "zero one two three four five six seven eight nine".split()
_NUMBER_WORDS = {"oh": "zero", "o": "zero"}


def normalise(text: str) -> list[str]:
    text = text.lower().replace("@", " at ").replace("_", " underscore ")
    text = re.sub(r"(?<=\w)\.(?=\w)", " dot ", text)
    words: list[str] = []
    for word in re.findall(r"[a-z0-9']+", text):
        if word.isdigit():
            words.extend(_DIGITS[int(d)] for d in word)
        else:
            words.append(_NUMBER_WORDS.get(word, word))
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=CT2_DIR")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/turns"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    from voice_agent.providers.offline.whisper import WhisperSpeechToText

    models: dict[str, str | None] = {"tiny.en": None}
    for spec in args.model:
        name, _, folder = spec.partition("=")
        models[name] = folder
    turns = load_turns()[: args.limit]
    report: dict[str, object] = {}
    for name, folder in models.items():
        stt = WhisperSpeechToText(None, folder, 1, 1)  # type: ignore[arg-type]
        stt.warm_up()
        errors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        times = []
        for turn in turns:
            pcm = mulaw.decode(turn.ulaw)
            start = max(0, turn.label["onset_ms"] - 100) * 8
            audio = pcm[start : (turn.end_ms + 100) * 8]
            started = time.perf_counter()
            text = stt.transcribe_blocking(audio, 8000)
            times.append((time.perf_counter() - started) * 1000.0)
            ref, hyp = normalise(turn.text), normalise(text)
            wrong = edit_distance(ref, hyp)
            noise = "clean" if turn.label["snr_db"] is None else f"{turn.label['snr_db']:.0f} dB"
            for key in ("all", f"voice {turn.label['voice']}", f"noise {noise}"):
                errors[key][0] += wrong
                errors[key][1] += len(ref)
        wer = {key: round(100.0 * e / n, 1) for key, (e, n) in sorted(errors.items())}
        report[name] = {
            "wer_percent": wer,
            "ms_per_turn_median": float(np.median(times)),
            "ms_per_turn_p95": float(np.percentile(times, 95)),
        }
        print(name, json.dumps(report[name]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stt_wer.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
