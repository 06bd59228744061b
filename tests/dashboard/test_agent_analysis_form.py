"""The portal's [analysis] section (#13): the post-call extraction schema edited as form
rows, refused field by field with the loader's message (nothing stored), and the
published agent's analysis schema is what the form said. On SQLite and PostgreSQL (the
draft is JSON on one, JSONB on the other)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from tests.dashboard.conftest import ACME_STAFF, AsUser, Site, csrf_of, seed, serve_in_process
from tests.storage.conftest import database_url, pg_session_database
from voice_agent.settings import Settings

__all__ = ["database_url", "pg_session_database"]  # fixtures, used by name

AGENT = "/portal/acme/agents/receptionist"


@pytest.fixture
async def site(
    cascade_settings: Callable[..., Settings], recording: Path, database_url: str
) -> AsyncIterator[Site]:
    """The seeded dashboard, on each database backend."""
    settings = cascade_settings(database_url=database_url)
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)
        yield Site(app, runtime, settings, recording)


def rows_of(page: str) -> dict[str, str]:
    """The form's analysis rows as a POST would send them (name, type, selects…)."""
    data: dict[str, str] = {}
    for match in re.finditer(r'<input name="(analysis\.\d+\.\w+)" value="([^"]*)"', page):
        data[match.group(1)] = html.unescape(match.group(2))
    for match in re.finditer(r'<select name="(analysis\.\d+\.\w+)"(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', match.group(2))
        data[match.group(1)] = chosen.group(1) if chosen else ""
    data["analysis"] = "1"
    return data


async def _form(staff: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    page = (await staff.get(AGENT)).text
    return csrf_of(page), rows_of(page)


async def _draft(site: Site) -> dict[str, object]:
    studio = site.runtime.agent_studio
    assert studio is not None
    agent = await studio.repo.get("acme", "receptionist")
    return (await studio.repo.draft(agent)).data


async def test_the_form_shows_the_template_schema(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    page = (await staff.get(AGENT)).text
    assert "Post-call analysis" in page
    assert 'id="analysis-instructions">A caller is qualified when' in page
    data = rows_of(page)
    # The receptionist's six fields, then one empty row for a new one.
    names = [data[f"analysis.{i}.name"] for i in range(7)]
    assert names == ["name", "need", "budget", "timeline", "emergency", "interest_level", ""]
    assert data["analysis.4.type"] == "boolean" and data["analysis.0.slot"] == "name"
    assert data["analysis.5.type"] == "enum" and data["analysis.5.derive"] == "interest"
    assert data["analysis.5.values"] == "high, medium, low, unknown"
    assert "analysis.7.name" not in data

    # Sent back as shown, the form changes nothing (a save of other fields keeps the schema).
    before = await _draft(site)
    instructions = re.search(r'id="analysis-instructions">([^<]*)<', page)
    assert instructions
    unchanged = data | {"analysis.instructions": html.unescape(instructions.group(1))}
    saved = await staff.post(
        AGENT + "/draft", data={"csrf_token": csrf_of(page), "action": "save", **unchanged}
    )
    assert saved.status_code == 303, saved.text
    assert (await _draft(site))["analysis"] == before["analysis"]


async def test_add_edit_remove_and_publish(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    token, rows = await _form(staff)
    edits = rows | {
        "analysis.instructions": "Qualified: they booked a visit.",
        "analysis.1.description": "What they need, briefly",
        "analysis.4.remove": "on",  # emergency goes
        "analysis.6.name": "property_type",  # the new row
        "analysis.6.type": "enum",
        "analysis.6.description": "House, flat or business premises",
        "analysis.6.values": "house, flat, business",
    }
    published = await staff.post(
        AGENT + "/draft", data={"csrf_token": token, "action": "publish", **edits}
    )
    assert published.status_code == 303, published.text
    agent, version = site.runtime.agent_for("acme", "receptionist")
    assert version == 1 and agent is not None
    schema = agent.analysis
    assert schema.instructions == "Qualified: they booked a visit."
    by_name = {f.name: f for f in schema.fields}
    # A set: PostgreSQL keeps the draft as JSONB, which orders a table's keys by length.
    assert set(by_name) == {"name", "need", "budget", "timeline", "interest_level", "property_type"}
    assert by_name["need"].description == "What they need, briefly"
    assert by_name["need"].slot == "need"
    assert by_name["property_type"].type == "enum"
    assert by_name["property_type"].values == ("house", "flat", "business")
    assert by_name["interest_level"].derive == "interest"
    # The structured-output schema the model is given follows the edit.
    fields = schema.json_schema(("qualified", "other"))["properties"]["fields"]  # type: ignore[index]
    assert "property_type" in fields["properties"] and "emergency" not in fields["properties"]  # type: ignore[index]

    page = (await staff.get(AGENT)).text
    assert 'value="property_type"' in page and 'value="house, flat, business"' in page
    assert 'value="emergency"' not in page

    # Every row removed and the instructions emptied: no [analysis] left at all.
    token, rows = await _form(staff)
    cleared = rows | {"analysis.instructions": ""}
    cleared |= {f"analysis.{i}.remove": "on" for i in range(6)}
    saved = await staff.post(
        AGENT + "/draft", data={"csrf_token": token, "action": "save", **cleared}
    )
    assert saved.status_code == 303, saved.text
    assert "analysis" not in await _draft(site)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"name": "Budget Level", "type": "string", "description": "x"},
            "analysis.fields.Budget Level: name must be lowercase snake_case",
        ),
        (
            {"name": "size", "type": "string", "description": ""},
            "analysis.fields.size.description: must not be empty",
        ),
        (
            {"name": "size", "type": "enum", "description": "How big"},
            "analysis.fields.size.values: an enum needs a non-empty array of strings",
        ),
        (
            {"name": "size", "type": "enum", "description": "How big", "values": "big, big"},
            "analysis.fields.size.values: lists a value twice",
        ),
        (
            {"name": "size", "type": "number", "description": "How big", "values": "1, 2"},
            "analysis.fields.size.values: only enum fields have values",
        ),
        (
            {"name": "size", "type": "string", "description": "How big", "slot": "budget",
             "derive": "caller_name"},
            "analysis.fields.size.derive: a field is filled by a slot or derived, not both",
        ),
        (
            {"name": "size", "type": "number", "description": "How big", "derive": "caller_name"},
            "analysis.fields.size.derive: derive = 'caller_name' needs type 'string'",
        ),
        (
            {"name": "size", "type": "string", "description": "How big", "slot": "shoe_size"},
            "analysis.fields.size.slot: 'shoe_size' is not a step slot",
        ),
        (
            {"name": "size", "type": "date", "description": "How big"},
            "analysis.fields.size.type: must be one of string, number, boolean, enum",
        ),
        (
            {"name": "", "type": "string", "description": "How big"},
            "analysis.fields[7].name: a field needs a name",
        ),
        (
            {"name": "budget", "type": "string", "description": "Again"},
            "analysis.fields.budget: two fields have this name",
        ),
    ],
)  # fmt: skip
async def test_bad_rows_are_refused_by_name_and_nothing_is_stored(
    site: Site, as_user: AsUser, row: dict[str, str], message: str
) -> None:
    staff = await as_user(ACME_STAFF)
    token, rows = await _form(staff)
    before = await _draft(site)
    new = {f"analysis.6.{key}": value for key, value in row.items()}
    refused = await staff.post(
        AGENT + "/draft", data={"csrf_token": token, "action": "publish", **rows, **new}
    )
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert message in text
    # The message is shown on the row it is about, which keeps what was typed.
    shown = re.search(r'id="analysis-(\d+)-error">' + re.escape(message), text)
    assert shown, "the message is not on its row"
    assert f'<fieldset id="analysis-{shown.group(1)}" class="invalid"' in refused.text
    # Every row is shown again as typed, the new one too.
    assert f'value="{html.escape(row["description"])}"' in refused.text
    if "two fields" in message:  # both rows of that name carry the message
        flagged = re.findall(
            r'id="analysis-(\d+)-error">' + re.escape(html.escape(message)), refused.text
        )
        assert flagged == ["2", "6"]
    # Nothing stored, nothing published.
    assert await _draft(site) == before
    assert site.runtime.agent_for("acme", "receptionist")[1] is None


async def test_markup_in_a_row_is_shown_as_typed(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    token, rows = await _form(staff)
    typed = {"analysis.6.name": "<script>x</script>", "analysis.6.description": "<b>d</b>"}
    refused = await staff.post(
        AGENT + "/draft", data={"csrf_token": token, "action": "save", **rows, **typed}
    )
    assert refused.status_code == 400
    assert "<script>x</script>" not in refused.text and "<b>d</b>" not in refused.text
    assert "&lt;b&gt;d&lt;/b&gt;" in refused.text
