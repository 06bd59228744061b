"""SentenceSplitter: each sentence goes to TTS the moment the model has finished it, and
nothing else is cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voice_agent.conversation.sentences import SentenceSplitter


def split(*deltas: str) -> list[str]:
    splitter = SentenceSplitter()
    out = [s for delta in deltas for s in splitter.feed(delta)]
    rest = splitter.flush()
    return out + ([rest] if rest else [])


def test_a_sentence_is_out_as_soon_as_the_next_one_begins() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # could still be "there.com" or "5.5"
    assert splitter.feed(" How") == ["Hello there."]
    assert splitter.feed(" are you? I'm") == ["How are you?"]
    assert splitter.flush() == "I'm"


def test_question_and_exclamation_marks_and_closing_quotes() -> None:
    assert split('He said "call me." Then he left! Really?! Yes. ') == [
        'He said "call me."',
        "Then he left!",
        "Really?!",
        "Yes.",
    ]


def test_abbreviations_and_initials_do_not_end_a_sentence() -> None:
    assert split("Dr. Smith and Mrs. Jones will visit, e.g. on Monday. Okay?") == [
        "Dr. Smith and Mrs. Jones will visit, e.g. on Monday.",
        "Okay?",
    ]
    assert split("Ask for J. R. Ewing. He knows.") == ["Ask for J. R. Ewing.", "He knows."]


def test_decimals_and_thousands_are_not_breaks() -> None:
    assert split("It is 5", ".", "5 metres, about $5,000. Fine.") == [
        "It is 5.5 metres, about $5,000.",
        "Fine.",
    ]


def test_an_ellipsis_followed_by_a_space_is_a_pause_between_sentences() -> None:
    assert split("Well... I think so. Hmm… maybe.") == ["Well...", "I think so.", "Hmm…", "maybe."]
    # With no space after it, it is part of the sentence.
    assert split("Wait...what? Ok") == ["Wait...what?", "Ok"]


def test_a_long_clause_is_spoken_at_its_last_comma_without_waiting_for_the_full_stop() -> None:
    clause = (
        "We cover roofing, plumbing, electrical work and remodeling across the whole county, "
        "and our project managers visit every site in person before quoting"
    )
    assert len(clause) > 120
    splitter = SentenceSplitter()
    first = splitter.feed(clause)
    assert first == [clause[: clause.rindex(", ") + 1]]
    assert splitter.feed(" anything. Next") == [clause[clause.rindex(", ") + 2 :] + " anything."]
    assert splitter.flush() == "Next"


def test_a_long_clause_without_a_comma_waits_for_its_end() -> None:
    words = "word " * 40
    splitter = SentenceSplitter()
    assert splitter.feed(words) == []
    assert splitter.flush() == words.strip()


def test_flush_returns_the_rest_once_and_empties_the_buffer() -> None:
    splitter = SentenceSplitter()
    assert splitter.flush() is None
    splitter.feed("  Thanks for calling  ")
    assert splitter.flush() == "Thanks for calling"
    assert splitter.flush() is None
    splitter.feed("   ")
    assert splitter.flush() is None


_SENTENCES = st.sampled_from(
    [
        "Hi there.",
        "How can I help you today?",
        "Dr. Brown is out until 9 a.m. tomorrow.",
        "It costs about 5.5 thousand dollars!",
        'She said "no."',
        "Well...",
        "Our hours are 8 to 6, Monday to Friday.",
    ]
)


@given(st.lists(_SENTENCES, min_size=1, max_size=6), st.data())
def test_how_the_text_is_streamed_does_not_change_the_sentences(
    sentences: list[str], data: st.DataObject
) -> None:
    text = " ".join(sentences)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(text) - 1), max_size=12)))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    streamed = split(*deltas)
    assert streamed == split(text)
    # Nothing is lost or reordered.
    assert " ".join(streamed) == text
