"""An agent's language and per-pipeline TTS voices (#13): validated field by field like
every other field of a definition, and resolved to the voice of the pipeline a server runs
(the AgentBook hands calls definitions whose ``voice`` is that pipeline's choice)."""

from __future__ import annotations

from typing import Any

import pytest

from prompts import AgentDefinitionError, load_agents, parse_agent_data, template_data
from prompts.voices import LANGUAGES, PIPELINE_VOICES, language_instruction
from voice_agent.agents.book import AgentBook
from voice_agent.providers.openai.realtime import GA_VOICES
from voice_agent.providers.openai.tts import OPENAI_VOICES
from voice_agent.settings import Settings


def _with(**fields: Any) -> dict[str, Any]:
    data = template_data("receptionist")
    data.update(fields)
    return data


def test_language_and_voices_are_read() -> None:
    agent = parse_agent_data(
        _with(language="ES", voices={"cascade": "coral", "realtime": "cedar"}, voice="ash")
    )
    assert agent.language == "es"  # codes are case-insensitive, stored lowercase
    assert agent.voice_for("cascade") == "coral"
    assert agent.voice_for("realtime") == "cedar"
    assert agent.voice_for("offline") == "ash"  # the any-pipeline voice
    assert agent.for_pipeline("cascade").voice == "coral"
    plain = parse_agent_data(_with())
    assert plain.language == "en" and plain.voices == {} and plain.voice is None
    assert plain.for_pipeline("cascade") is plain  # nothing to change: no copy made


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"language": "xx"}, "language: 'xx' is not a supported language code"),
        ({"language": 7}, "language: must be a string, got int"),
        ({"language": " "}, "language: must not be empty"),
        ({"voices": "coral"}, 'voices: must be a table of pipeline = "voice name"'),
        ({"voices": {"openai": "coral"}}, "voices.openai: unknown field (allowed: cascade"),
        ({"voices": {"cascade": "bogus"}}, "voices.cascade: 'bogus' is not a cascade voice"),
        ({"voices": {"realtime": "fable"}}, "voices.realtime: 'fable' is not a realtime voice"),
        ({"voices": {"offline": "a b"}}, "voices.offline: 'a b' is not a voice name"),
        ({"voices": {"cascade": ""}}, "voices.cascade: must not be empty"),
        ({"voices": {"cascade": 3}}, "voices.cascade: must be a string, got int"),
    ],
)
def test_bad_speech_fields_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentDefinitionError) as refused:
        parse_agent_data(_with(**fields), "draft")
    assert message in str(refused.value)


def test_voice_lists_are_the_providers_and_pipeline_names_the_settings() -> None:
    # One list each: the providers take theirs from prompts.voices.
    assert PIPELINE_VOICES["cascade"] == OPENAI_VOICES
    assert PIPELINE_VOICES["realtime"] == GA_VOICES
    names = Settings.model_fields["agent_pipeline"].annotation
    assert set(PIPELINE_VOICES) == set(names.__args__[0].__args__)  # type: ignore[union-attr]


def test_language_instruction() -> None:
    assert language_instruction("en") == ""
    assert "Always reply in Spanish" in language_instruction("es")
    assert LANGUAGES["fr"] == "French"


def test_book_hands_calls_the_pipelines_voice() -> None:
    templates = load_agents()
    chosen = {
        slug: parse_agent_data(
            {**template_data(slug), "voice": "ash", "voices": {"cascade": "coral"}}
        )
        for slug in templates
    }
    assert AgentBook(chosen, "cascade")["receptionist"].voice == "coral"
    assert AgentBook(chosen, "offline")["receptionist"].voice == "ash"
    assert AgentBook(chosen)["receptionist"].voice == "ash"  # no pipeline: as written
