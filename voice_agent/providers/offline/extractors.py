"""Slot extractors: read a name, an amount of money, a timeframe or a yes/no from a turn.

Each returns the value as it should appear in a summary ("Sarah Johnson",
"about $5,000", "in the next two weeks") or None when the turn does not contain one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from voice_agent.providers.offline.intents import FILLERS, Utterance, is_noise, yes_or_no

# --- names ----------------------------------------------------------------------------

_NAME_INTROS: tuple[tuple[str, ...], ...] = (
    ("my", "name", "is"),
    ("my", "name's"),
    ("name's",),
    ("name", "is"),
    ("this", "is"),
    ("i'm",),
    ("im",),
    ("i", "am"),
    ("it's",),
    ("it", "is"),
    ("call", "me"),
    ("speaking", "with"),
    ("talking", "to"),
)
#: Words that end a name or show the "name" was something else ("I'm calling about...").
_NOT_NAME = frozenset(
    (
        "a an the and or but with about from for to in on at of by my your our their his her "
        "we you i me he she they it this that there here is are was be been do does did have "
        "has had need needs want wanted like would could can will just not so calling call "
        "looking trying wondering interested having going getting good fine great well yes no "
        "yeah okay ok hi hello hey um uh thanks thank please what who when where why how "
        "which wait hold second moment sec bye goodbye roof house home help leak leaking "
        "company again also too very really actually some any all one someone somebody person "
        "human sure right now today tomorrow speaking name sorry because if as still afraid "
        "busy glad happy ready done back hoping got get phone number morning afternoon "
        "evening hm hmm mr mrs ms"
    ).split()
)
_LEAD_IN = frozenset(
    (
        "hi hello hey yeah yes yep um uh oh so well sure okay ok good morning afternoon "
        "evening there hiya sorry"
    ).split()
)
_NAME_TAILS = frozenset({"here", "speaking", "calling"})
_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|[^\sA-Za-z]")
_NAME_PART = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")
_CAP_AFTER = re.compile(r"(^|['\-])([a-z])")


def extract_name(turn: Utterance) -> str | None:
    """ "my name is X", "this is X", "I'm X", "X here", or a bare name of up to 3 words."""
    words = _NAME_TOKEN.findall(turn.raw.replace("’", "'"))
    lowered = [w.lower() for w in words]
    for start in range(len(words)):
        for intro in _NAME_INTROS:
            if tuple(lowered[start : start + len(intro)]) == intro:
                name = _name_at(words, start + len(intro))
                if name:
                    return name
    # No intro phrase: strip greetings ("hi, yes, ...") and take what is left if it
    # looks like a name ("Sarah", "Sarah Johnson here").
    rest = [w for w in words if _NAME_PART.match(w)]
    while rest and rest[0].lower() in _LEAD_IN:
        rest.pop(0)
    if rest and rest[-1].lower() in _NAME_TAILS:
        rest.pop()
    if 1 <= len(rest) <= 3 and all(_is_name_part(w) for w in rest):
        return _format_name(rest)
    return None


def _name_at(words: list[str], start: int) -> str | None:
    parts: list[str] = []
    for word in words[start : start + 3]:
        if not _is_name_part(word):
            break
        parts.append(word)
    return _format_name(parts) if parts else None


def _is_name_part(word: str) -> bool:
    return bool(_NAME_PART.match(word)) and word.lower() not in _NOT_NAME


def _format_name(parts: list[str]) -> str:
    # Whisper may lowercase everything ("sarah johnson") or shout ("SARAH"); keep real
    # mixed case ("McDonald") as heard.
    out = []
    for part in parts:
        if part.islower() or part.isupper():
            part = _CAP_AFTER.sub(lambda m: m.group(1) + m.group(2).upper(), part.lower())
        out.append(part)
    return " ".join(out)


# --- money ----------------------------------------------------------------------------

_UNITS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
} | {"couple": 2}
_TENS = {
    word: 10 * value
    for value, word in enumerate(
        "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2
    )
}
_SCALES = {
    "hundred": 100,
    "thousand": 1_000,
    "k": 1_000,
    "grand": 1_000,
    "million": 1_000_000,
    "mil": 1_000_000,
    "m": 1_000_000,
}
_CURRENCY_AFTER = frozenset({"dollars", "dollar", "bucks", "usd"})
_RANGE_JOINS = frozenset({"to", "and", "or", "-"})
_QUALIFIERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("no", "more", "than"), "up to"),
    (("up", "to"), "up to"),
    (("at", "most"), "up to"),
    (("maximum",), "up to"),
    (("max",), "up to"),
    (("less", "than"), "under"),
    (("under",), "under"),
    (("below",), "under"),
    (("more", "than"), "over"),
    (("over",), "over"),
    (("above",), "over"),
    (("at", "least"), "at least"),
    (("about",), "about"),
    (("around",), "about"),
    (("roughly",), "about"),
    (("approximately",), "about"),
    (("maybe",), "about"),
    (("somewhere",), "about"),
    (("ballpark",), "about"),
    (("like",), "about"),
)
_MONEY_TOKEN = re.compile(r"\$|\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|-")
_DIGIT_GROUPING = re.compile(r"(?<=\d),(?=\d{3}\b)")
_VAGUE_AMOUNT = re.compile(r"\b(a few|several|a couple of|a couple) (hundred|thousand|grand)\b")
_UNSURE = re.compile(
    r"\b(not sure|unsure|don't know|dont know|do not know|no idea|no clue|"
    r"haven't decided|have not decided|not decided|depends|flexible|"
    r"no budget|no set budget|whatever it takes)\b"
)


@dataclass(slots=True)
class _Amount:
    value: float
    start: int
    end: int  # token index after the amount
    scale: int  # largest scale word used (1 when none)
    currency: bool


def extract_money(turn: Utterance, strict: bool = False) -> str | None:
    """ "$5,000", "five thousand dollars", "about 20k", "between 5 and 10 thousand".

    `strict` (used when looking ahead at later questions) only accepts amounts that are
    clearly money, so "two windows" never becomes a budget."""
    text = _DIGIT_GROUPING.sub("", turn.raw.lower())
    # "20k", "$2.5k", "1.5m": split the suffix from the digits.
    text = re.sub(r"(\d)(k|m)\b", r"\1 \2", text)
    tokens = _MONEY_TOKEN.findall(text)
    amounts = _amounts(tokens)
    if not strict:
        candidates = [a for a in amounts if a.currency or a.scale >= 100 or a.value >= 100]
    else:
        candidates = [a for a in amounts if a.currency or a.scale >= 1000]
    if not candidates:
        vague = _VAGUE_AMOUNT.search(text)
        if vague:
            return f"a few {vague.group(2).replace('grand', 'thousand')} dollars"
        if not strict and _UNSURE.search(text):
            return "not sure yet"
        return None
    first = max(candidates, key=lambda a: (a.currency or a.scale > 1, a.value))
    low, high = first, None
    # A range is two amounts joined by "to"/"and"/"-": "5 to 10 thousand".
    for other in amounts:
        if other.start - first.end == 1 and tokens[first.end] in _RANGE_JOINS:
            high = other
        elif first.start - other.end == 1 and tokens[other.end] in _RANGE_JOINS:
            low, high = other, first
    if high is not None:
        low_value = low.value
        if low.scale < high.scale and low.value * high.scale <= high.value:
            low_value = low.value * high.scale
        if low_value < high.value:
            return f"{_dollars(low_value)} to {_dollars(high.value)}"
        low = high if low_value >= high.value else low
    qualifier = _qualifier(tokens, low.start)
    amount = _dollars(low.value)
    return f"{qualifier} {amount}" if qualifier else amount


def _amounts(tokens: list[str]) -> list[_Amount]:
    found: list[_Amount] = []
    i = 0
    while i < len(tokens):
        amount = _amount_at(tokens, i)
        if amount is None:
            i += 1
            continue
        found.append(amount)
        i = amount.end
    return found


def _is_number_word(token: str) -> bool:
    return token in _UNITS or token in _TENS or token[0].isdigit()


def _amount_at(tokens: list[str], start: int) -> _Amount | None:
    i = start
    currency = tokens[i] == "$"
    if currency:
        i += 1
    if i >= len(tokens):
        return None
    total = 0.0
    current = 0.0
    scale = 1
    prev = ""
    first, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
    if first in ("a", "an") and nxt in ("hundred", "thousand", "million", "grand", "couple"):
        # "a thousand" is one thousand; "a couple thousand" is two.
        current, prev = (0.0, "a") if nxt == "couple" else (1.0, "one")
        i += 1
    elif not (first in _UNITS or first in _TENS or first[0].isdigit()):
        return None
    while i < len(tokens):
        token = tokens[i]
        after_number = bool(prev) and (prev[0].isdigit() or prev in _UNITS or prev in _TENS)
        if token[0].isdigit():
            if prev and prev not in _SCALES:
                break
            current += float(token)
        elif token in _UNITS:
            # "twenty five" continues a number; "five five" does not.
            if after_number and not (prev in _TENS and _UNITS[token] < 10):
                break
            current += _UNITS[token]
        elif token in _TENS:
            if after_number:
                break
            current += _TENS[token]
        elif token == "of" and prev == "couple":
            pass
        elif token in _SCALES and (after_number or prev in ("hundred", "of")):
            if token in ("k", "m") and not prev[0].isdigit():
                break
            multiplier = _SCALES[token]
            scale = max(scale, multiplier)
            if multiplier == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * multiplier
                current = 0
        elif (
            token == "and"
            and prev in ("hundred", "thousand")
            and i + 1 < len(tokens)
            and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS)
        ):
            pass
        else:
            break
        prev = token
        i += 1
    value = total + current
    if value <= 0:
        return None
    if i < len(tokens) and tokens[i] in _CURRENCY_AFTER:
        currency = True
        i += 1
    return _Amount(value=value, start=start, end=i, scale=scale, currency=currency)


def _qualifier(tokens: list[str], start: int) -> str:
    before = tuple(tokens[max(0, start - 4) : start])
    for phrase, label in _QUALIFIERS:
        n = len(phrase)
        for j in range(len(before) - n + 1):
            if before[j : j + n] == phrase:
                return label
    return ""


def _dollars(value: float) -> str:
    if value == int(value):
        return f"${int(value):,}"
    return f"${value:,.2f}"


# --- timeframes -----------------------------------------------------------------------

_ASAP = "as soon as possible"
_NUM = (
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"couple(?: of)?|a couple(?: of)?|few|a few|several)"
)
_UNIT = r"(?:days?|weeks?|months?|years?|weekends?)"
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = (
    r"(?:january|february|march|april|june|july|august|september|october|november|"
    r"december)"
)
_MONTH_LEAD = r"in |by |before |early |late |mid "
_SEASON = r"(?:spring|summer|fall|autumn|winter)"
_PERIOD = rf"(?:week|weekend|month|year|quarter|{_SEASON})"
_PROPER_NOUN = re.compile(rf"\b(?:{_WEEKDAY}|{_MONTH}|may)\b")
_TIMEFRAMES: tuple[tuple[re.Pattern[str], str | None], ...] = tuple(
    (re.compile(rf"\b(?:{pattern})\b"), label)
    for pattern, label in (
        (
            r"as soon as possible|asap|a s a p|right away|immediately|right now|urgent(?:ly)?|"
            r"emergency|straight away|as soon as you can",
            _ASAP,
        ),
        (
            r"no rush|no hurry|not in a (?:rush|hurry)|whenever|flexible|any ?time|"
            r"doesn't matter|does not matter",
            "flexible, no rush",
        ),
        (
            r"not sure|unsure|don't know|dont know|do not know|no idea|haven't decided|"
            r"not decided",
            "not sure yet",
        ),
        (rf"(?:with)?in the (?:next|coming) (?:{_NUM} )?{_UNIT}", None),
        (rf"(?:over|during) the (?:next|coming) (?:{_NUM} )?{_UNIT}", None),
        (rf"(?:the )?(?:next|coming) (?:{_NUM} )?{_UNIT}", None),
        (rf"(?:with)?in (?:{_NUM} )?{_UNIT}(?: or (?:two|so|three))?", None),
        (rf"{_NUM} {_UNIT} from now", None),
        (
            rf"(?:by |before |at )?(?:the )?(?:end of |middle of |beginning of |start of )"
            rf"(?:the |this |next )?{_PERIOD}",
            None,
        ),
        (rf"(?:later |early |earlier |sometime )?(?:this|next) (?:coming )?{_PERIOD}", None),
        (rf"(?:in|over|during) the {_SEASON}", None),
        (
            r"today|tonight|tomorrow(?: morning| afternoon| evening)?|"
            r"the day after tomorrow|this (?:morning|afternoon|evening)",
            None,
        ),
        (rf"(?:this |next |on |by )?{_WEEKDAY}(?: morning| afternoon| evening)?", None),
        (
            # "may" alone is usually the verb, so the month needs a lead-in word.
            rf"(?:{_MONTH_LEAD})?{_MONTH}|(?:{_MONTH_LEAD})may",
            None,
        ),
        (r"soon|shortly", "soon"),
    )
)


def extract_timeframe(turn: Utterance) -> str | None:
    """ "in the next two weeks", "ASAP", "this month", "tomorrow", "no rush"...; the
    longest phrase wins so "by the end of next month" beats "next month"."""
    text = " ".join(turn.tokens)
    best: tuple[int, int, str] | None = None
    for pattern, label in _TIMEFRAMES:
        for match in pattern.finditer(text):
            length = match.end() - match.start()
            value = label or match.group(0)
            if label == _ASAP:
                # Urgency outranks any date mentioned alongside it.
                length += 1000
            if best is None or length > best[0]:
                best = (length, match.start(), value)
    return _PROPER_NOUN.sub(lambda m: m.group(0).capitalize(), best[2]) if best else None


# --- free text and yes/no -------------------------------------------------------------

_MAX_TEXT = 300
_LEADING_FILLER = re.compile(
    r"^(?:(?:um+|uh+|er+|erm|so|well|oh|okay|ok)\b[\s,.]*)+", re.IGNORECASE
)


def extract_text(turn: Utterance) -> str | None:
    """The caller's own words, when they say anything beyond fillers."""
    if is_noise(turn) or not any(t not in FILLERS for t in turn.tokens):
        return None
    text = _LEADING_FILLER.sub("", turn.raw).strip()
    if not text:
        return None
    text = text[0].upper() + text[1:]
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT].rsplit(" ", 1)[0] + "..."


def extract_yes_no(turn: Utterance) -> str | None:
    return yes_or_no(turn)


EXTRACTORS: dict[str, Callable[[Utterance], str | None]] = {
    "name": extract_name,
    "text": extract_text,
    "money": extract_money,
    "timeframe": extract_timeframe,
    "yes_no": extract_yes_no,
}
