"""Compliance keywords (STOP, START, HELP...), read before any model sees a message.

The rule, following Twilio's own SMS STOP filtering: a keyword is the WHOLE message, never a
word inside a sentence ("please stop calling me" is an ordinary message, as it is for
Twilio). Around and inside the keyword, anything that is not a letter or digit is ignored and case
does not matter, so "Stop.", " stop!!", "STOP ALL", "opt-out" and "Opt Out" all count; "cancel 2"
(an answer to a menu) does not.
Joining inner spaces is slightly wider than Twilio (which forwards "STOP ALL" without
blocking) and errs on the side of honouring an opt-out: the FCC's own list spells one of the
keywords "opt out".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeywordKind = Literal["opt_out", "opt_in", "help"]

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})

#: Longer than any keyword with generous spacing: skip the scan for ordinary messages.
_MAX_KEYWORD_MESSAGE = 40


@dataclass(frozen=True, slots=True)
class Keyword:
    kind: KeywordKind
    word: str  # the canonical keyword, e.g. "STOP"


def classify(body: str) -> Keyword | None:
    """The compliance keyword `body` consists of, or None for an ordinary message."""
    if len(body) > _MAX_KEYWORD_MESSAGE:
        return None
    word = "".join(ch for ch in body if ch.isalnum()).upper()
    if word in OPT_OUT:
        return Keyword("opt_out", word)
    if word in OPT_IN:
        return Keyword("opt_in", word)
    if word in HELP:
        return Keyword("help", word)
    return None
