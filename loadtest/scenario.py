"""What each simulated caller says: the script of turns, barge-ins drawn at a set rate,
and how long the stand-in providers are set to take to answer each turn."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance, load_script
from loadtest.standins.openai_server import Latency, default_responder, tokenize

#: Built-in scripts, by name: fixture utterance ids in the order the caller says them.
SCRIPTS: dict[str, tuple[str, ...]] = {
    # A whole inquiry: about a minute of conversation, ending in goodbye (the agent hangs up).
    "inquiry": ("greeting_reply", "need", "budget", "timing", "hours", "goodbye"),
    # The shortest complete call: one exchange, then goodbye. For smoke runs.
    "short": ("greeting_reply", "goodbye"),
}
DEFAULT_SCRIPT = "inquiry"
#: A barge-in starts this long (uniformly drawn, ms) after the agent's reply became audible.
BARGE_IN_MS = (400.0, 1200.0)

# The session's sentence end: punctuation, optional closing quote or bracket, whitespace.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")


class ScriptError(ValueError):
    """The script file is malformed; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class ScriptTurn:
    say: str
    barge_in_after_ms: float | None = None
    pause_ms: float = 400.0


def load(spec: str) -> list[ScriptTurn]:
    """A built-in script name, or a JSON file: a list of {"say": <fixture id>,
    "barge_in_after_ms": <ms or null>, "pause_ms": <ms>}."""
    if spec in SCRIPTS:
        return [ScriptTurn(name) for name in SCRIPTS[spec]]
    path = Path(spec)
    if not path.is_file():
        raise ScriptError(f"--script: no built-in script or file named {spec!r}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScriptError(f"--script: {path} is not readable JSON: {exc}") from None
    known = {u.id for u in load_script()}
    if not isinstance(entries, list) or not entries:
        raise ScriptError(f"--script: {path} must hold a non-empty JSON list of turns")
    turns: list[ScriptTurn] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("say") not in known:
            raise ScriptError(
                f"--script: turn {index}: 'say' must be one of {sorted(known)}, got {entry!r}"
            )
        barge = entry.get("barge_in_after_ms")
        pause = entry.get("pause_ms", 400.0)
        if barge is not None and (not isinstance(barge, int | float) or barge < 0):
            raise ScriptError(f"--script: turn {index}: 'barge_in_after_ms' must be ms or null")
        if not isinstance(pause, int | float) or pause < 0:
            raise ScriptError(f"--script: turn {index}: 'pause_ms' must be a number of ms")
        turns.append(ScriptTurn(entry["say"], barge, float(pause)))
    return turns


class Scenario:
    """Makes each call's turns; knows the stand-ins' set latency for every reply."""

    def __init__(
        self,
        script: list[ScriptTurn],
        *,
        barge_in_rate: float,
        latency: Latency,
        endpointing_ms: float,
        seed: int,
        realtime_response_ms: float | None = None,
    ) -> None:
        self._script = script
        self._rate = barge_in_rate
        self._rng = random.Random(seed)
        self._utterances = {u.id: u for u in load_script()}
        self.latency = latency
        self.endpointing_ms = endpointing_ms
        #: Realtime pipeline: the stand-in's one set latency (speech end detected to audio).
        self.realtime_response_ms = realtime_response_ms

    @property
    def ends_in_goodbye(self) -> bool:
        return self._script[-1].say == "goodbye"

    def call_turns(self) -> list[CallerTurn]:
        turns: list[CallerTurn] = []
        last = len(self._script) - 1
        for index, turn in enumerate(self._script):
            barge = turn.barge_in_after_ms
            # Any turn but the first (which answers the greeting) and the last may cut in.
            if barge is None and 0 < index < last and self._rng.random() < self._rate:
                barge = self._rng.uniform(*BARGE_IN_MS)
            turns.append(CallerTurn(self._utterances[turn.say], barge, turn.pause_ms))
        return turns

    def set_latency_ms(self, utterance: Utterance) -> float:
        """What the stand-ins and the endpointing window alone put between the end of this
        utterance and the agent's first audio: silence window, STT, LLM up to the end of
        the first sentence, TTS first byte."""
        if self.realtime_response_ms is not None:
            return self.endpointing_ms + self.realtime_response_ms
        lat = self.latency
        return (
            self.endpointing_ms
            + lat.stt_ms
            + lat.llm_first_token_ms
            + lat.llm_token_ms * first_sentence_tokens(utterance.text)
            + lat.tts_first_byte_ms
        )


def first_sentence_tokens(said: str) -> int:
    """Tokens the stand-in streams before the agent holds its first whole sentence (the
    sentence is whole when the whitespace after its full stop arrives)."""
    reply = default_responder(
        [{"role": "user", "content": said}],
        [{"type": "function", "function": {"name": "end_call"}}],
    ).text
    tokens = tokenize(reply)
    text = ""
    for count, token in enumerate(tokens, 1):
        text += token
        if _SENTENCE_END.search(text):
            return count
    return len(tokens)
