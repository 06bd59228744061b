"""The TOML loader: shipped definitions load, and every bad file fails with file + field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prompts import (
    AgentDefinition,
    AgentDefinitionError,
    load_agent,
    load_agents,
    parse_agent,
)

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"

VALID = """
slug = "tester"
name = "Tester"
direction = "inbound"
persona = "A test agent."
system_prompt = "You work for {business_name}."
greeting = "Hello from {business_name}. Who am I speaking with?"
goodbye = "Bye, {name}."
fallback = "Sorry?"
transfer_offer = "Shall I connect you?"
transfer_number = "+15550100200"

[variables]
business_name = "Acme"

[[steps]]
id = "name"
slot = "name"
ask = "Who am I speaking with?"
extract = "name"
ack = "Hi {name}."

[[steps]]
id = "budget"
slot = "budget"
ask = "What is your budget?"
extract = "money"

[[faq]]
question = "Hours?"
answer = "Nine to five."
keywords = ["hours"]
"""


def write(tmp_path: Path, text: str, name: str = "tester.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def expect_error(tmp_path: Path, text: str, field: str | None, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AgentDefinitionError) as caught:
        load_agent(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert caught.value.field == field, message
    if field:
        assert f": {field}: " in message
    assert fragment in message


# --- shipped definitions --------------------------------------------------------------


def test_shipped_definitions_load_from_package_data() -> None:
    agents = load_agents()
    assert set(agents) >= {"receptionist", "lead_qualifier"}
    assert agents["receptionist"].direction == "inbound"
    assert agents["lead_qualifier"].direction == "outbound"


@pytest.mark.parametrize("slug", ["receptionist", "lead_qualifier"])
def test_shipped_definition_is_complete(slug: str) -> None:
    agent = load_agent(PROMPTS_DIR / f"{slug}.toml")
    assert agent.slug == slug
    assert [s.extract for s in agent.steps][-2:] == ["money", "timeframe"]
    assert agent.transfer_offer and agent.transfer_number == "+15550100200"
    assert agent.voicemail and agent.wrap_up
    assert set(agent.tools) == {"end_call", "transfer_call"}
    # The greeting ends by asking the first step's question, so the first caller turn
    # answers it.
    assert agent.render_speech(agent.greeting).endswith(agent.steps[0].ask)
    prompt = agent.render(agent.system_prompt)
    assert "Acme Home Services" in prompt
    assert "transfer_call" in prompt and "end_call" in prompt
    assert not re.search(r"[{}]", prompt)


def test_receptionist_matches_the_brief() -> None:
    agent = load_agents()["receptionist"]
    assert [(s.id, s.extract) for s in agent.steps] == [
        ("name", "name"),
        ("need", "text"),
        ("budget", "money"),
        ("timing", "timeframe"),
    ]
    greeting = agent.render_speech(agent.greeting)
    assert greeting == (
        "Thanks for calling Acme Home Services, this is Joe. Who am I speaking with?"
    )
    questions = " ".join(entry.question.lower() for entry in agent.faq)
    for topic in ("hours", "area", "cost", "emergency"):
        assert topic in questions
    assert "Springfield" in agent.render(agent.system_prompt)
    # Per-call values (a tenant's own hours) override the defaults.
    assert "9 to 5" in agent.render(agent.system_prompt, {"hours": "9 to 5"})


def test_lead_qualifier_greeting_uses_first_name_and_survives_without_it() -> None:
    agent = load_agents()["lead_qualifier"]
    assert agent.steps[0].extract == "yes_no"
    assert agent.render_speech(agent.greeting, {"first_name": "Dana"}).startswith(
        "Hi Dana, this is Joe from Acme Home Services"
    )
    assert agent.render_speech(agent.greeting, {}).startswith(
        "Hi, this is Joe from Acme Home Services"
    )


def test_parse_agent_accepts_text() -> None:
    agent = parse_agent(VALID)
    assert isinstance(agent, AgentDefinition)
    assert agent.steps[1].reprompt == "Sorry, could you say that again?"
    assert agent.faq[0].keywords == ("hours",)
    assert agent.tools == ("end_call", "transfer_call")


def test_load_agents_from_a_directory(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    write(tmp_path, VALID.replace('"tester"', '"other"'), "other.toml")
    (tmp_path / "notes.txt").write_text("not a definition")
    assert sorted(load_agents(tmp_path)) == ["other", "tester"]


# --- failures -------------------------------------------------------------------------


def test_missing_required_field(tmp_path: Path) -> None:
    text = VALID.replace('greeting = "Hello from {business_name}. Who am I speaking with?"\n', "")
    expect_error(tmp_path, text, "greeting", "missing required field")


def test_unknown_top_level_key_catches_typos(tmp_path: Path) -> None:
    expect_error(tmp_path, 'greting = "hi"\n' + VALID, "greting", "unknown field")


def test_unknown_key_in_a_step(tmp_path: Path) -> None:
    text = VALID.replace('extract = "money"', 'extract = "money"\nreprompts = "Again?"')
    expect_error(tmp_path, text, "steps[1].reprompts", "unknown field")


def test_bad_extractor(tmp_path: Path) -> None:
    text = VALID.replace('extract = "money"', 'extract = "monee"')
    expect_error(tmp_path, text, "steps[1].extract", "'monee' is not one of")


def test_bad_toml(tmp_path: Path) -> None:
    expect_error(tmp_path, VALID + "\nthis is = = not toml\n", None, "invalid TOML")


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        ('slug = "tester"', 'slug = "Bad Slug"', "slug", "lowercase"),
        ('direction = "inbound"', 'direction = "sideways"', "direction", "inbound"),
        (
            'greeting = "Hello from {business_name}. Who am I speaking with?"',
            'greeting = "   "',
            "greeting",
            "must not be empty",
        ),
        (
            'greeting = "Hello from {business_name}. Who am I speaking with?"',
            "greeting = 42",
            "greeting",
            "must be a string",
        ),
        (
            'transfer_number = "+15550100200"',
            'transfer_number = "555-0100"',
            "transfer_number",
            "E.164",
        ),
        ('transfer_number = "+15550100200"\n', "", "transfer_number", "missing"),
        (
            'fallback = "Sorry?"',
            'fallback = "Sorry?"\ntools = ["end_call", "fax"]',
            "tools",
            "unknown tool 'fax'",
        ),
        (
            'fallback = "Sorry?"',
            'fallback = "Sorry?"\ntools = ["end_call", "end_call"]',
            "tools",
            "twice",
        ),
        (
            'fallback = "Sorry?"',
            'fallback = "Sorry?"\ntools = ["end_call"]',
            "transfer_offer",
            "not in tools",
        ),
        ('id = "budget"', 'id = "name"', "steps[1].id", "duplicate step id"),
        ('slot = "budget"', 'slot = "name"', "steps[1].slot", "duplicate slot"),
        ('id = "budget"', 'id = "Budget Step"', "steps[1].id", "snake_case"),
        ('ask = "What is your budget?"\n', "", "steps[1].ask", "missing required field"),
        (
            'extract = "money"',
            'extract = "money"\ndecline = "Bye"',
            "steps[1].decline",
            "only yes_no",
        ),
        (
            'goodbye = "Bye, {name}."',
            'goodbye = "Bye, {nmae}."',
            "goodbye",
            "{nmae} is not declared",
        ),
        ('ack = "Hi {name}."', 'ack = "Hi {name!r}."', "steps[0].ack", "plain"),
        ('ack = "Hi {name}."', 'ack = "Hi {name."', "steps[0].ack", "bad template"),
        ('answer = "Nine to five."', 'answer = "From {opening}."', "faq[0].answer", "{opening}"),
        ('keywords = ["hours"]', "keywords = []", "faq[0].keywords", "non-empty"),
        ('keywords = ["hours"]\n', "", "faq[0].keywords", "missing required field"),
        (
            'business_name = "Acme"',
            "business_name = 3",
            "variables.business_name",
            "must be a string",
        ),
        ('business_name = "Acme"', 'BusinessName = "Acme"', "variables.BusinessName", "snake_case"),
    ],
)
def test_invalid_fields(tmp_path: Path, old: str, new: str, field: str, fragment: str) -> None:
    assert old in VALID
    expect_error(tmp_path, VALID.replace(old, new, 1), field, fragment)


def test_steps_must_be_tables(tmp_path: Path) -> None:
    text = VALID.split("[[steps]]")[0].replace("[variables]", 'steps = ["name"]\n[variables]')
    expect_error(tmp_path, text, "steps", "array of tables")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AgentDefinitionError, match=r"nope\.toml: cannot read"):
        load_agent(tmp_path / "nope.toml")


def test_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(AgentDefinitionError, match="not a directory"):
        load_agents(tmp_path / "missing")


def test_duplicate_slug_across_files(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID, "b.toml")
    with pytest.raises(AgentDefinitionError) as caught:
        load_agents(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "b.toml"))
    assert "a.toml" in str(caught.value) and caught.value.field == "slug"


def test_parse_agent_names_its_source() -> None:
    with pytest.raises(AgentDefinitionError, match=r"^tenant 7: slug: missing"):
        parse_agent('name = "x"', source="tenant 7")


# --- post-call analysis schema and the returning caller's greeting (#12) ----------------

ANALYSIS = """
[analysis]
instructions = "Qualified: we know the budget."

[analysis.fields.name]
type = "string"
description = "The caller's name"
slot = "name"

[analysis.fields.interest]
type = "enum"
values = ["high", "medium", "low", "unknown"]
description = "How keen"
derive = "interest"

[analysis.fields.urgent]
type = "boolean"
description = "Urgent?"
"""


def test_analysis_fields_load_in_order_and_make_a_strict_schema(tmp_path: Path) -> None:
    agent = load_agent(write(tmp_path, VALID + ANALYSIS))
    assert [f.name for f in agent.analysis.fields] == ["name", "interest", "urgent"]
    assert agent.analysis.fields[0].slot == "name"
    assert agent.analysis.instructions == "Qualified: we know the budget."
    schema = agent.analysis.json_schema(("qualified", "other"))
    fields = schema["properties"]["fields"]  # type: ignore[index]
    assert fields["required"] == ["name", "interest", "urgent"]
    assert fields["additionalProperties"] is False
    assert fields["properties"]["interest"]["enum"] == ["high", "medium", "low", "unknown", None]
    assert fields["properties"]["urgent"]["type"] == ["boolean", "null"]
    assert schema["properties"]["outcome"]["enum"] == ["qualified", "other"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        ('type = "boolean"', 'type = "date"', "analysis.fields.urgent.type", "must be one of"),
        ('slot = "name"', 'slot = "nope"', "analysis.fields.name.slot", "not a step slot"),
        ('derive = "interest"', 'derive = "mood"', "analysis.fields.interest.derive", "one of"),
        (
            'values = ["high", "medium", "low", "unknown"]',
            'values = ["yes", "no"]',
            "analysis.fields.interest.derive",
            "needs an enum allowing high, medium, low",
        ),
        (
            'values = ["high", "medium", "low", "unknown"]',
            "values = []",
            "analysis.fields.interest.values",
            "non-empty",
        ),
        (
            'description = "Urgent?"',
            'description = "Urgent?"\nvalues = ["a"]',
            "analysis.fields.urgent.values",
            "only enum",
        ),
        (
            'description = "Urgent?"',
            'description = "Urgent?"\nweight = 2',
            "analysis.fields.urgent.weight",
            "unknown field",
        ),
        (
            "[analysis.fields.urgent]",
            "[analysis.fields.Urgent]",
            "analysis.fields.Urgent",
            "snake_case",
        ),
        (
            'description = "Urgent?"',
            "",
            "analysis.fields.urgent.description",
            "missing required field",
        ),
    ],
)
def test_invalid_analysis_fields(
    tmp_path: Path, old: str, new: str, field: str, fragment: str
) -> None:
    expect_error(tmp_path, VALID + ANALYSIS.replace(old, new), field, fragment)


def test_returning_greeting_uses_caller_variables(tmp_path: Path) -> None:
    text = VALID.replace(
        'fallback = "Sorry?"',
        'fallback = "Sorry?"\n'
        'returning_greeting = "Welcome back, {caller_name}! {last_interaction}"',
    )
    agent = load_agent(write(tmp_path, text))
    assert agent.greeting_for({"caller_name": "Sam"}) == agent.returning_greeting
    assert agent.greeting_for({}) == agent.greeting  # a stranger
    # A misspelt caller variable is caught like any other.
    expect_error(
        tmp_path, text.replace("{caller_name}", "{caller}"), "returning_greeting", "{caller}"
    )
