"""End-of-turn benchmark: false cut-offs against mean wait, silence-only vs text-aware.

    HF_HUB_OFFLINE=1 .venv/bin/python -m loadtest.turns.bench [--stt-ms N] [--out DIR]

Every turn of ``turns.json`` is replayed frame by frame through the call's own
``Listener`` (WebRTC VAD, level gate, endpointer, and for the text-aware detector the
speculative pause and verdicts) on a simulated clock: no sleeping, each 20 ms frame
advances the clock by 20 ms. The text-aware detector transcribes the turn so far with
the offline Whisper model at each speculation pause; the transcript's verdict reaches
the listener only as many frames later as the transcription really took on this
machine (or ``--stt-ms``), so slow speech recognition costs wait, as it would live.

A turn is cut off when the listener ends it before its true end (a mid-turn pause
taken for the end). Wait is the time from the true end to the end decision, over the
turns not cut off. Silence-only endpointing is swept over its silence wait; the
text-aware detector over its minimum, ordinary and maximum waits, and its Pareto front
is drawn. Results go to ``<out>/endpointing.png`` and ``<out>/endpointing.json``.
Transcripts are cached in ``<out>/stt-cache-<model>.json`` (delete it to re-measure).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voice_agent.conversation.listener import (
    FRAME_BYTES,
    FRAME_MS,
    CallerSpeech,
    Listener,
    PausedSpeech,
    TurnWaits,
)
from voice_agent.conversation.turn_end import judge, question_kind

HERE = Path(__file__).resolve().parent
#: What the agent asked before each kind of answer (the detector reads the question).
QUESTIONS = {
    "phone": "And what's the best phone number to reach you on?",
    "email": "What email address should we send the estimate to?",
    "address": "What's the address of the property?",
    "name": "Who am I speaking with?",
    "yes_no": "Would you like me to connect you with a project manager now?",
    "when": "When would you like the work done?",
    "budget": "Do you have a rough budget in mind?",
    "need": "What can we help you with today?",
    "open": "Thanks for calling. How can I help?",
}
START_MS = 120  # barge_in_min_ms default: speech needs this much voice to start
AGGRESSIVENESS = 2


@dataclass(frozen=True)
class Turn:
    id: str
    question: str
    text: str
    end_ms: int
    ulaw: bytes
    label: dict[str, Any]


@dataclass(frozen=True)
class Point:
    detector: str
    silence_ms: int
    min_wait_ms: int | None
    max_wait_ms: int | None
    speculation_ms: int | None
    likely_wait_ms: int | None
    cutoff_rate: float
    mean_wait_ms: float
    p50_wait_ms: float
    p95_wait_ms: float
    missed: int
    transcripts_per_turn: float


def load_turns(folder: Path = HERE) -> list[Turn]:
    labels = json.loads((folder / "turns.json").read_text(encoding="utf-8"))
    return [
        Turn(
            item["id"],
            item["question"],
            item["text"],
            item["end_ms"],
            (folder / f"{item['id']}.ulaw").read_bytes(),
            item,
        )
        for item in labels
    ]


class Transcriber:
    """Offline Whisper on the calling thread, with its answers and times cached on disk."""

    def __init__(self, cache: Path, model_path: str | None, fixed_ms: float | None) -> None:
        self._cache_path = cache
        self._cache: dict[str, list[Any]] = (
            json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
        )
        self._model_path = model_path
        self._fixed_ms = fixed_ms
        self._stt: Any = None
        self.dirty = False

    def __call__(self, key: str, pcm16: np.ndarray) -> tuple[str, float]:
        hit = self._cache.get(key)
        if hit is None:
            if self._stt is None:
                from voice_agent.providers.offline.whisper import WhisperSpeechToText

                self._stt = WhisperSpeechToText(None, self._model_path, 2, 1)  # type: ignore[arg-type]
                self._stt.warm_up()
            started = time.perf_counter()
            text = self._stt.transcribe_blocking(pcm16, 8000)
            hit = [text, (time.perf_counter() - started) * 1000.0]
            self._cache[key] = hit
            self.dirty = True
        text, ms = hit
        return text, (self._fixed_ms if self._fixed_ms is not None else ms)

    def save(self) -> None:
        if self.dirty:
            self._cache_path.write_text(json.dumps(self._cache, indent=0) + "\n")
            self.dirty = False


def replay(
    turn: Turn,
    silence_ms: int,
    waits: TurnWaits | None,
    transcribe: Transcriber | None,
    adaptive: bool = True,
) -> tuple[float | None, int]:
    """Ms from the true end to the end decision (negative: cut off; None: never ended),
    and how many speculative transcripts were made."""
    now = [0.0]
    ended: list[float] = []
    due: list[tuple[int, int, int]] = []  # (frame, pause, wait_ms)
    frame = [0]
    spoken = QUESTIONS[turn.question]
    kind = question_kind(spoken)
    assert waits is None or transcribe is not None
    speculations = [0]

    def on_end(speech: CallerSpeech) -> None:
        ended.append(now[0])

    def on_pause(paused: PausedSpeech) -> None:
        assert transcribe is not None and waits is not None
        speculations[0] += 1
        text, ms = transcribe(f"{turn.id}:{len(paused.pcm16)}", paused.pcm16)
        verdict = judge(text, kind)
        wait = waits.wait_for(verdict, silence_ms)
        due.append((frame[0] + math.ceil(ms / FRAME_MS), paused.pause, wait))

    listener = Listener(
        lambda _at: None,
        on_end,
        start_ms=START_MS,
        silence_ms=silence_ms,
        aggressiveness=AGGRESSIVENESS,
        waits=waits,
        on_pause=on_pause if waits is not None else None,
        clock=lambda: now[0],
        wall=lambda: now[0],
        adaptive_floor=adaptive,
    )
    audio = turn.ulaw
    for index in range(len(audio) // FRAME_BYTES):
        frame[0] = index
        now[0] = (index + 1) * FRAME_MS / 1000.0
        listener.push(audio[index * FRAME_BYTES : (index + 1) * FRAME_BYTES])
        if due:
            ready = [d for d in due if d[0] <= index]
            for item in ready:
                due.remove(item)
                listener.verdict(item[1], item[2])
        if ended:
            break
    listener.close()
    if not ended:
        return None, speculations[0]
    return ended[0] * 1000.0 - turn.end_ms, speculations[0]


def evaluate(
    turns: list[Turn],
    silence_ms: int,
    waits: TurnWaits | None,
    transcribe: Transcriber | None,
) -> Point:
    waited: list[float] = []
    cutoffs = missed = speculations = 0
    for turn in turns:
        wait, made = replay(turn, silence_ms, waits, transcribe)
        speculations += made
        if wait is None:
            missed += 1
        elif wait < 0:
            cutoffs += 1
        else:
            waited.append(wait)
    values = np.array(waited or [math.nan])
    return Point(
        "text-aware" if waits else "silence-only",
        silence_ms,
        waits.min_wait_ms if waits else None,
        waits.max_wait_ms if waits else None,
        waits.speculation_ms if waits else None,
        waits.likely_wait_ms if waits else None,
        (cutoffs + missed) / len(turns),
        float(values.mean()),
        float(np.percentile(values, 50)),
        float(np.percentile(values, 95)),
        missed,
        speculations / len(turns),
    )


def pareto(points: list[Point]) -> list[Point]:
    front: list[Point] = []
    for point in sorted(points, key=lambda p: (p.mean_wait_ms, p.cutoff_rate)):
        if not front or point.cutoff_rate < front[-1].cutoff_rate:
            front.append(point)
    return front


def plot(
    silence: list[Point],
    aware: list[Point],
    defaults: tuple[Point, Point],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    xs = [p.mean_wait_ms for p in silence]
    ax.plot(xs, [100 * p.cutoff_rate for p in silence], "o-", color="#868e96", label="silence only")
    ax.scatter(
        [p.mean_wait_ms for p in aware],
        [100 * p.cutoff_rate for p in aware],
        s=8,
        color="#a5d8ff",
        label="text-aware, every setting tried",
    )
    front = pareto(aware)
    ax.plot(
        [p.mean_wait_ms for p in front],
        [100 * p.cutoff_rate for p in front],
        "o-",
        color="#1971c2",
        label="text-aware, best front",
    )
    old, new = defaults
    ax.scatter([old.mean_wait_ms], [100 * old.cutoff_rate], marker="s", s=80, color="#e8590c")
    ax.annotate("today's default (500 ms silence)", (old.mean_wait_ms, 100 * old.cutoff_rate))
    ax.scatter([new.mean_wait_ms], [100 * new.cutoff_rate], marker="*", s=160, color="#2b8a3e")
    ax.annotate("text-aware defaults", (new.mean_wait_ms, 100 * new.cutoff_rate))
    ax.axhline(5, color="#c92a2a", linestyle=":", linewidth=1)
    ax.axvline(400, color="#c92a2a", linestyle=":", linewidth=1)
    ax.set_xlabel("mean wait after the true end of turn (ms)")
    ax.set_ylabel("false cut-offs (% of turns)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(xs) + 100)
    ax.set_ylim(0, max(60.0, 100 * max(p.cutoff_rate for p in silence) + 5))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/turns"))
    parser.add_argument("--model", default=None, help="CTranslate2 Whisper folder")
    parser.add_argument("--model-name", default="tiny.en")
    parser.add_argument("--stt-ms", type=float, default=None, help="fixed transcription time")
    parser.add_argument("--default-silence", type=int, default=500)
    parser.add_argument("--default-min", type=int, default=TurnWaits().min_wait_ms)
    parser.add_argument("--default-max", type=int, default=TurnWaits().max_wait_ms)
    parser.add_argument("--default-likely", type=int, default=TurnWaits().likely_wait_ms)
    parser.add_argument("--default-speculation", type=int, default=TurnWaits().speculation_ms)
    parser.add_argument("--default-base", type=int, default=1000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    turns = load_turns()
    transcribe = Transcriber(
        args.out / f"stt-cache-{args.model_name}.json", args.model, args.stt_ms
    )
    silence = [evaluate(turns, ms, None, None) for ms in range(200, 1700, 100)]
    aware: list[Point] = []
    for speculation in (100, 200):
        for base in (400, 600, 800, 1000, 1200, 1400):
            for minimum in (100, 200, 300):
                for maximum in (1200, 1500, 1800):
                    for likely in (0, 800, 1100):
                        if minimum > base or maximum < base:
                            continue
                        waits = TurnWaits(speculation, minimum, maximum, likely)
                        aware.append(evaluate(turns, base, waits, transcribe))
            transcribe.save()
    old = evaluate(turns, args.default_silence, None, None)
    base = args.default_base or args.default_silence
    defaults = TurnWaits(
        args.default_speculation, args.default_min, args.default_max, args.default_likely
    )
    new = evaluate(turns, base, defaults, transcribe)
    transcribe.save()
    times = [ms for _text, ms in transcribe._cache.values()]
    stt = (
        f"taken as {args.stt_ms:.0f} ms"
        if args.stt_ms is not None
        else f"measured, median {np.median(times):.0f} ms"
    )
    title = f"{len(turns)} turns, {args.model_name} speculative STT ({stt} per transcript)"
    try:
        plot(silence, aware, (old, new), args.out / "endpointing.png", title)
    except ModuleNotFoundError as exc:  # matplotlib is a dev extra: the table still counts
        print(f"no plot ({exc})")
    result = {
        "turns": len(turns),
        "stt_model": args.model_name,
        "stt_ms_median": float(np.median(times)),
        "stt_ms_p95": float(np.percentile(times, 95)),
        "silence_only": [asdict(p) for p in silence],
        "text_aware_front": [asdict(p) for p in pareto(aware)],
        "text_aware_all": [asdict(p) for p in aware],
        "default_silence_only": asdict(old),
        "default_text_aware": asdict(new),
    }
    (args.out / "endpointing.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{'detector':13} {'silence':>7} {'spec':>5} {'min':>5} {'max':>5} {'likely':>6} "
        f"{'cut-off':>8} {'wait':>6} {'stt/turn':>8}"
    )
    for point in [*silence, *pareto(aware)]:
        print(
            f"{point.detector:13} {point.silence_ms:7} {point.speculation_ms or '':>5} "
            f"{point.min_wait_ms or '':>5} {point.max_wait_ms or '':>5} "
            f"{'' if point.likely_wait_ms is None else point.likely_wait_ms:>6} "
            f"{100 * point.cutoff_rate:7.1f}% {point.mean_wait_ms:6.0f} "
            f"{point.transcripts_per_turn:8.1f}"
        )
    for name, point in (("today", old), ("defaults", new)):
        rate, wait = 100 * point.cutoff_rate, point.mean_wait_ms
        print(f"{name}: {rate:.1f}% cut off, mean wait {wait:.0f} ms")
    print(f"plot: {args.out / 'endpointing.png'}")


if __name__ == "__main__":
    main()
