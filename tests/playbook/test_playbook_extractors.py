"""Slot extractors and intents on Whisper-style text (case, punctuation, digits or words)."""

from __future__ import annotations

import pytest

from voice_agent.providers.offline.extractors import (
    extract_money,
    extract_name,
    extract_text,
    extract_timeframe,
    extract_yes_no,
)
from voice_agent.providers.offline.intents import (
    goodbye_strength,
    is_noise,
    parse_utterance,
    wants_hold,
    wants_person,
    wants_repeat,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi, my name is Sarah Johnson.", "Sarah Johnson"),
        ("hi my name is sarah johnson", "Sarah Johnson"),
        ("This is Sarah calling about my roof.", "Sarah"),
        ("I'm Dave.", "Dave"),
        ("it's bob o'brien", "Bob O'Brien"),
        ("Sarah.", "Sarah"),
        ("sarah johnson here", "Sarah Johnson"),
        ("Yes, hello, SARAH", "Sarah"),
        ("Hey, it's McDonald.", "McDonald"),
        ("My name’s Ana-Maria Lopez", "Ana-Maria Lopez"),
    ],
)
def test_names(text: str, name: str) -> None:
    assert extract_name(parse_utterance(text)) == name


@pytest.mark.parametrize(
    "text",
    [
        "I'm calling about my roof.",
        "Hi, what are your hours?",
        "yes",
        "",
        "Sorry, wait a second.",
        "I need help with a leaking roof at my house.",
    ],
)
def test_not_names(text: str) -> None:
    assert extract_name(parse_utterance(text)) is None


@pytest.mark.parametrize(
    ("text", "money"),
    [
        ("My budget is about five thousand dollars.", "about $5,000"),
        ("my budget is about $5,000", "about $5,000"),
        ("My budget is about $5,000.", "about $5,000"),
        ("5000", "$5,000"),
        ("about 20k", "about $20,000"),
        ("$2.5K", "$2,500"),
        ("fifteen hundred bucks", "$1,500"),
        ("twenty five hundred dollars", "$2,500"),
        ("five thousand five hundred", "$5,500"),
        ("a thousand dollars", "$1,000"),
        ("a couple thousand", "$2,000"),
        ("around ten grand", "about $10,000"),
        ("up to $12,500.50", "up to $12,500.50"),
        ("no more than 8000 dollars", "up to $8,000"),
        ("between 5 and 10 thousand", "$5,000 to $10,000"),
        ("$5,000-$10,000", "$5,000 to $10,000"),
        ("1.5 million", "$1,500,000"),
        ("a few thousand", "a few thousand dollars"),
        ("I'm not sure yet", "not sure yet"),
    ],
)
def test_money(text: str, money: str) -> None:
    assert extract_money(parse_utterance(text)) == money


@pytest.mark.parametrize("text", ["purple monkey dishwasher", "next two weeks", "five five", ""])
def test_not_money(text: str) -> None:
    assert extract_money(parse_utterance(text)) is None


def test_strict_money_only_takes_clear_amounts() -> None:
    assert extract_money(parse_utterance("I need two windows"), strict=True) is None
    assert extract_money(parse_utterance("maybe 5000"), strict=True) is None
    assert extract_money(parse_utterance("not sure"), strict=True) is None
    assert extract_money(parse_utterance("a new roof for 10k"), strict=True) == "$10,000"


@pytest.mark.parametrize(
    ("text", "timeframe"),
    [
        ("Sometime in the next two weeks would be great.", "in the next two weeks"),
        ("sometime in the next 2 weeks", "in the next 2 weeks"),
        ("ASAP", "as soon as possible"),
        ("A.S.A.P. please", "as soon as possible"),
        ("it's an emergency, as soon as you can, ideally next week", "as soon as possible"),
        ("This month.", "this month"),
        ("tomorrow morning", "tomorrow morning"),
        ("by the end of next month", "by the end of next month"),
        ("in a couple of weeks", "in a couple of weeks"),
        ("No rush really.", "flexible, no rush"),
        ("I'm not sure, maybe next month", "next month"),
        ("I don't know", "not sure yet"),
        ("next Tuesday", "next Tuesday"),
        ("hopefully in May", "in May"),
        ("within 3 months", "within 3 months"),
    ],
)
def test_timeframes(text: str, timeframe: str) -> None:
    assert extract_timeframe(parse_utterance(text)) == timeframe


@pytest.mark.parametrize("text", ["purple", "I may be out", "", "five thousand dollars"])
def test_not_timeframes(text: str) -> None:
    assert extract_timeframe(parse_utterance(text)) is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Yes.", "yes"),
        ("yeah sure", "yes"),
        ("No problem, go ahead.", "yes"),
        ("I don't mind", "yes"),
        ("no", "no"),
        ("Not really, I'm driving.", "no"),
        ("it's not a good time", "no"),
        ("[DTMF 1]", "yes"),
        ("[DTMF 2]", "no"),
        ("purple", None),
        ("", None),
    ],
)
def test_yes_no(text: str, answer: str | None) -> None:
    assert extract_yes_no(parse_utterance(text)) == answer


def test_text_keeps_the_callers_words_without_fillers() -> None:
    assert extract_text(parse_utterance("uh, i need a new fence")) == "I need a new fence"
    assert extract_text(parse_utterance("x " * 400)).endswith("...")
    for noise in ("", "um", "Thank you.", "[BLANK_AUDIO]", "(music)", "you", "..."):
        assert extract_text(parse_utterance(noise)) is None, noise
        assert is_noise(parse_utterance(noise))


def test_dtmf_is_recognised_exactly() -> None:
    turn = parse_utterance("[DTMF 0]")
    assert turn.dtmf == "0" and wants_person(turn)
    assert parse_utterance("[DTMF 5]").dtmf == "5"
    assert parse_utterance("press [DTMF 5] now").dtmf is None


@pytest.mark.parametrize(
    ("text", "strength"),
    [
        ("Goodbye.", "strong"),
        ("ok bye", "strong"),
        ("I'm not interested.", "strong"),
        ("No thanks, that's all for today.", "weak"),
        ("that is all", "weak"),
        ("thats all", "weak"),
        ("what are your hours", None),
        ("stand by", None),
    ],
)
def test_goodbye(text: str, strength: str | None) -> None:
    assert goodbye_strength(parse_utterance(text)) == strength


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Can I speak to a real person?", True),
        ("transfer me please", True),
        ("I want a human", True),
        ("representative", True),
        ("No, I want to talk to someone.", True),
        ("I don't need to talk to a person", False),
        ("no need to speak to someone", False),
        ("I need a new roof", False),
    ],
)
def test_person_requests(text: str, wanted: bool) -> None:
    assert wants_person(parse_utterance(text)) is wanted


def test_hold_and_repeat_only_on_short_turns() -> None:
    assert wants_hold(parse_utterance("Sorry, wait a second."))
    assert wants_hold(parse_utterance("hang on"))
    assert not wants_hold(
        parse_utterance(
            "we had to wait a second time for the last company to show up and they never did"
        )
    )
    assert wants_repeat(parse_utterance("Sorry?"))
    assert wants_repeat(parse_utterance("could you repeat that"))
    assert not wants_repeat(parse_utterance("I need help with my roof"))
