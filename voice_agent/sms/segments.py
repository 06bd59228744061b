"""How many SMS segments a text costs, and cutting a reply down to a segment budget.

GSM-7 (the default alphabet): 160 septets in one segment, 153 per segment once a message is
split (the user-data header takes 7). Characters of the extension table ({ } [ ] ~ \\ | ^ €
and form feed) take two septets, and an escape pair is never split across segments.
Any character outside GSM-7 turns the whole message into UCS-2: 70 UTF-16 code units in one
segment, 67 per segment when split; a surrogate pair (emoji) is never split either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

SINGLE = {"gsm7": 160, "ucs2": 70}
MULTI = {"gsm7": 153, "ucs2": 67}
#: Marks a cut reply; "…" is not in GSM-7, so plain dots keep a GSM-7 text cheap.
_ELLIPSIS = {"gsm7": "...", "ucs2": "…"}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: Encoding
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def encoding_of(text: str) -> Encoding:
    for ch in text:
        if ch not in _GSM7_BASIC and ch not in _GSM7_EXTENDED:
            return "ucs2"
    return "gsm7"


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "gsm7":
        return [2 if ch in _GSM7_EXTENDED else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> SegmentCount:
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units <= SINGLE[encoding]:
        return SegmentCount(encoding, 1, units)
    # Pack greedily: a two-unit character that does not fit moves whole to the next segment.
    per = MULTI[encoding]
    segments, used = 1, 0
    for size in sizes:
        if used + size > per:
            segments += 1
            used = 0
        used += size
    return SegmentCount(encoding, segments, units)


def fit_segments(text: str, max_segments: int) -> str:
    """`text` when it fits in `max_segments`, else cut at the last word boundary that fits,
    with an ellipsis. The encoding of the whole text decides the budget, so a cut never
    turns a UCS-2 text into a cheaper one by accident or the other way round."""
    text = text.strip()
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text).segments <= max_segments:
        return text
    ellipsis = _ELLIPSIS[encoding_of(text)]
    # Word boundaries, longest first; binary search on the monotone "fits" predicate.
    cuts = [i for i, ch in enumerate(text) if ch.isspace()]
    if not cuts:
        cuts = list(range(1, len(text)))  # one long word: cut anywhere
    lo, hi, best = 0, len(cuts) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = text[: cuts[mid]].rstrip(" ,;:-") + ellipsis
        if count_segments(candidate).segments <= max_segments:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best or ellipsis
