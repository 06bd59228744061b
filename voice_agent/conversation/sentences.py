"""Incremental sentence splitting, so each finished sentence can go to TTS at once."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and whitespace.
_END = re.compile(r"[.!?…]+[\"')\]]*\s+")
# Words whose trailing period does not end a sentence.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "a.m", "p.m"}
)
#: A clause this long is spoken without waiting for its full stop, at a comma or dash.
_LONG_CLAUSE = 120
_SOFT_BREAK = re.compile(r"[,;:—–]\s+")


class SentenceSplitter:
    """Feed text deltas; get back the sentences they complete."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        sentences: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            candidate = self._buffer[start : match.end()].strip()
            if _ends_in_abbreviation(candidate):
                continue
            if candidate:
                sentences.append(candidate)
            start = match.end()
        self._buffer = self._buffer[start:]
        if len(self._buffer) > _LONG_CLAUSE:
            breaks = list(_SOFT_BREAK.finditer(self._buffer))
            if breaks:
                cut = breaks[-1].end()
                sentences.append(self._buffer[:cut].strip())
                self._buffer = self._buffer[cut:]
        return sentences

    def flush(self) -> str | None:
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None


def _ends_in_abbreviation(text: str) -> bool:
    if not text.endswith("."):
        return False
    last_word = text[:-1].rsplit(None, 1)[-1].lower() if text[:-1].strip() else ""
    return last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())
