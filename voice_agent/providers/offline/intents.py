"""What a caller's turn means, read from Whisper text with plain phrase matching.

Whisper (tiny.en) output varies: capitalised and punctuated or not, "that's" or
"thats", digits or words, bracketed noise tags like "[BLANK_AUDIO]". Everything here
works on a normalised word sequence so those differences do not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

_DTMF = re.compile(r"^\s*\[DTMF\s*([0-9*#A-Da-d])\s*\]\s*$")
# Whisper marks non-speech as [BLANK_AUDIO], (music), *coughs*, ♪ ... ♪.
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪[^♪]*♪?")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_SPACES = re.compile(r"\s+")

_QUESTION_STARTS = frozenset(
    (
        "what what's whats when where where's how how's why who who's which do does did are "
        "is can could will would should may have has"
    ).split()
)
_QUESTION_PHRASES = (
    "do you", "are you", "can you", "could you", "is there", "i was wondering", "tell me",
)  # fmt: skip

#: Words that carry no answer on their own.
FILLERS = frozenset(
    (
        "um uh umm uhh er erm hmm mm mhm ah oh eh so well like okay ok yes yeah yep no nope "
        "hi hello hey please thanks thank you the a an and just i it that this sorry right "
        "alright sure"
    ).split()
)
#: Whole turns tiny.en produces from silence or line noise.
_HALLUCINATIONS = frozenset(
    {
        "thank you",
        "thanks for watching",
        "thank you for watching",
        "you",
        "thank you so much for watching",
        "please subscribe",
        "subtitles by the amara org community",
    }
)

GOODBYE_STRONG = (
    "bye", "goodbye", "good bye", "bye bye", "hang up", "gotta go", "got to go", "have to go",
    "need to go", "talk to you later", "talk later", "have a good one", "have a good day",
    "have a nice day", "have a great day", "not interested", "stop calling", "don't call me",
    "take me off", "remove me from",
)  # fmt: skip
#: Phrases that end a call only when nothing else in the turn answers the question.
GOODBYE_WEAK = (
    "that's all for today", "that is all for today", "that's all for now",
    "that is all for now", "that's all", "that is all", "that'll be all", "that will be all",
    "thats all", "no thanks", "no thank you", "nothing else", "i'm all set",
    "that's everything", "that's it for today", "that's it for now",
)  # fmt: skip
_PERSON = (
    "human", "real person", "a person", "live person", "actual person", "someone real",
    "representative", "operator", "live agent", "real agent", "transfer me", "connect me",
    "put me through", "speak to someone", "speak with someone", "talk to someone",
    "talk with someone", "speak to somebody", "talk to somebody", "speak to a", "speak with a",
    "talk to a", "talk with a", "speak to the", "speak with the", "talk to the",
    "talk with the",
)  # fmt: skip
_NEGATIONS = frozenset({"don't", "dont", "not", "never"})
_HOLD = (
    "wait", "hold on", "hang on", "one sec", "one second", "a second", "a sec", "one moment",
    "a moment", "just a minute", "one minute", "give me a", "bear with me",
)  # fmt: skip
_REPEAT = (
    "repeat", "say that again", "come again", "pardon", "what was that", "didn't catch",
    "didn't hear", "sorry what", "huh", "say again",
)  # fmt: skip
_YES = (
    "yes", "yeah", "yep", "yup", "ya", "sure", "ok", "okay", "of course", "absolutely",
    "definitely", "please", "go ahead", "sounds good", "that works", "alright", "all right",
    "correct", "i do", "it is", "perfect", "great", "fine", "good time", "now is fine",
    "now is good", "now works", "i guess", "why not", "let's do it", "go for it", "yes please",
)  # fmt: skip
_NO = (
    "no", "nope", "nah", "not really", "not now", "not right now", "not a good time",
    "bad time", "busy", "can't talk", "cannot talk", "not at the moment", "i'm good",
    "i'm okay", "maybe later", "another time", "call me later", "call back later", "don't",
    "do not", "not today",
)  # fmt: skip
#: Yes-sounding phrases with a "no" inside them.
_NOT_REALLY_NO = (
    "no problem", "not a problem", "no worries", "no doubt", "why not", "don't mind",
    "do not mind",
)  # fmt: skip
_BOOKING = (
    "book", "booking", "schedule", "appointment", "set up a time", "set something up",
    "site visit", "visit", "come out", "come by", "free estimate", "on site estimate",
    "on-site estimate",
)  # fmt: skip

SHORT_TURN = 8


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller turn: the cleaned text plus a normalised word form for matching."""

    #: The caller's words with noise tags removed and whitespace collapsed.
    raw: str
    tokens: tuple[str, ...]
    #: The digit pressed, when the turn is a DTMF event ("[DTMF 5]").
    dtmf: str | None = None

    @property
    def padded(self) -> str:
        return " " + " ".join(self.tokens) + " "

    @property
    def is_question(self) -> bool:
        if self.raw.rstrip().endswith("?"):
            return True
        if self.tokens and self.tokens[0] in _QUESTION_STARTS:
            return True
        return any(self.has(p) for p in _QUESTION_PHRASES)

    def has(self, phrase: str) -> bool:
        return f" {normalise(phrase)} " in self.padded

    def any(self, phrases: Iterable[str]) -> bool:
        padded = self.padded
        return any(f" {normalise(p)} " in padded for p in phrases)

    def position(self, phrase: str) -> int:
        """Token index where `phrase` starts, or -1."""
        target = f" {normalise(phrase)} "
        at = self.padded.find(target)
        return -1 if at < 0 else self.padded.count(" ", 0, at + 1) - 1

    def without(self, phrases: Iterable[str]) -> Utterance:
        """The turn with `phrases` removed (longest first), for "what else was said"."""
        text = self.padded
        for phrase in sorted((normalise(p) for p in phrases), key=len, reverse=True):
            text = text.replace(f" {phrase} ", " ")
        tokens = tuple(text.split())
        return Utterance(raw=" ".join(tokens), tokens=tokens)


def normalise(text: str) -> str:
    """Lowercase words separated by single spaces, punctuation dropped."""
    return " ".join(_WORD.findall(text.lower().replace("’", "'").replace("‘", "'")))


def parse_utterance(text: str | None) -> Utterance:
    text = text or ""
    dtmf = _DTMF.match(text)
    if dtmf:
        return Utterance(raw=text.strip(), tokens=(), dtmf=dtmf.group(1).upper())
    raw = _SPACES.sub(" ", _ANNOTATION.sub(" ", text)).strip()
    return Utterance(raw=raw, tokens=tuple(normalise(raw).split()))


def is_noise(turn: Utterance) -> bool:
    """Nothing a person would count as an answer: silence, fillers, Whisper hallucinations."""
    if turn.dtmf is not None:
        return False
    if " ".join(turn.tokens) in _HALLUCINATIONS:
        return True
    return all(token in FILLERS for token in turn.tokens)


def goodbye_strength(turn: Utterance) -> Literal["strong", "weak"] | None:
    if turn.any(GOODBYE_STRONG):
        return "strong"
    if turn.any(GOODBYE_WEAK):
        return "weak"
    return None


def wants_person(turn: Utterance) -> bool:
    if turn.dtmf == "0":
        return True
    for phrase in _PERSON:
        at = turn.position(phrase)
        # "I don't need to talk to a person" is not a request for one.
        if at >= 0 and not (
            _NEGATIONS.intersection(turn.tokens[max(0, at - 6) : at]) or turn.has("no need")
        ):
            return True
    return False


def wants_hold(turn: Utterance) -> bool:
    return len(turn.tokens) <= SHORT_TURN and turn.any(_HOLD)


def wants_repeat(turn: Utterance) -> bool:
    if turn.tokens in (("what",), ("sorry",), ("what", "sorry"), ("sorry", "what")):
        return True
    return len(turn.tokens) <= SHORT_TURN and turn.any(_REPEAT)


def wants_booking(turn: Utterance) -> bool:
    return turn.any(_BOOKING)


def yes_or_no(turn: Utterance) -> Literal["yes", "no"] | None:
    """Read a yes/no answer; DTMF 1 is yes and 2 is no, as phone menus have taught callers."""
    if turn.dtmf == "1":
        return "yes"
    if turn.dtmf == "2":
        return "no"
    cleaned = turn.without(_NOT_REALLY_NO)
    if cleaned.any(_NO):
        return "no"
    if turn.any(_YES) or len(cleaned.tokens) < len(turn.tokens):
        return "yes"
    return None
