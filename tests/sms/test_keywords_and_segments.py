"""The keyword rule and the segment arithmetic, on their own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice_agent.sms.keywords import HELP, OPT_IN, OPT_OUT, classify
from voice_agent.sms.segments import count_segments, encoding_of, fit_segments


@pytest.mark.parametrize("word", sorted(OPT_OUT))
def test_opt_out_words(word: str) -> None:
    for text in (word, word.lower(), f" {word.title()}. ", f"{word}!!!", f"\n{word}\n"):
        keyword = classify(text)
        assert keyword is not None and (keyword.kind, keyword.word) == ("opt_out", word)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Start", "opt_in"),
        ("yes!", "opt_in"),
        ("UNSTOP", "opt_in"),
        ("help?", "help"),
        ("Info", "help"),
        ("Opt Out", "opt_out"),
        ("opt-out", "opt_out"),
        ("Stop all", "opt_out"),
        ("stop 🛑", "opt_out"),
    ],
)
def test_other_keywords(text: str, kind: str) -> None:
    keyword = classify(text)
    assert keyword is not None and keyword.kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "please stop calling me",
        "stop please",
        "cancel 2",
        "Yes, tomorrow works",
        "helpful",
        "",
        "stopping by later",
        "STOP " * 20,
    ],
)
def test_not_keywords(text: str) -> None:
    assert classify(text) is None


def test_keyword_sets_are_disjoint() -> None:
    assert not (OPT_OUT & OPT_IN) and not (OPT_OUT & HELP) and not (OPT_IN & HELP)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("{" * 80, "gsm7", 1),  # extension characters take two septets
        ("{" * 81, "gsm7", 2),
        ("é" * 160, "gsm7", 1),  # é is in the GSM-7 basic table
        ("ł" * 70, "ucs2", 1),
        ("ł" * 71, "ucs2", 2),
        ("ł" * 134, "ucs2", 2),
        ("ł" * 135, "ucs2", 3),
        ("😀" * 35, "ucs2", 1),  # a surrogate pair is two UTF-16 units
        ("😀" * 36, "ucs2", 2),
    ],
)
def test_segment_counts(text: str, encoding: str, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments) == (encoding, segments)


def test_escape_pairs_are_not_split_across_segments() -> None:
    # 152 septets then "{" (2): the pair moves whole to the next segment.
    assert count_segments("a" * 152 + "{" + "a" * 152).segments == 3


def test_fit_keeps_short_texts_and_cuts_long_ones_at_a_word() -> None:
    assert fit_segments("  Short and sweet.  ", 1) == "Short and sweet."
    text = "word " * 100
    cut = fit_segments(text, 2)
    assert count_segments(cut).segments <= 2 and cut.endswith("word...")
    assert len(cut) > 280  # uses the budget, not just a sliver of it
    emoji = "ok 😀 " * 60
    cut = fit_segments(emoji, 1)
    assert encoding_of(cut) == "ucs2" and cut.endswith("…") and count_segments(cut).segments == 1


@given(st.text(max_size=800), st.integers(min_value=1, max_value=4))
def test_fit_always_fits(text: str, limit: int) -> None:
    cut = fit_segments(text, limit)
    assert count_segments(cut).segments <= limit
    if count_segments(text.strip()).segments <= limit:
        assert cut == text.strip()
