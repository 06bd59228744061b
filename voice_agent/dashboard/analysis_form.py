"""The portal's [analysis] section (#13): the fields post-call analysis extracts, as form
rows (name, type, description, enum values, the slot or rule that fills it offline).

The rows become the same ``[analysis]`` table a TOML definition holds, so the loader's
rules (and its messages) decide what is valid. Only what a table cannot express is
checked here: a row with no name, and two rows with one name (a table would silently
hold only one).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from prompts import DERIVATIONS, FIELD_TYPES, AgentDefinitionError

__all__ = [
    "DERIVATIONS",
    "FIELD_TYPES",
    "analysis_problem",
    "apply_analysis",
    "error_row",
    "form_rows",
]

#: The keys one row edits besides its name; empty ones are left out of the table.
_ROW_KEYS = ("type", "description", "values", "slot", "derive")
_REQUIRED = ("type", "description")


def _rows(form: FormData) -> list[tuple[int, str, dict[str, str]]]:
    """(position, name, the row's other keys as typed) for each row kept: neither removed
    nor left blank (the empty row offered for a new field). Positions count kept rows
    from 1, as the form shows them again after a refusal."""
    rows: list[tuple[int, str, dict[str, str]]] = []
    index = 0
    while f"analysis.{index}.name" in form:
        prefix = f"analysis.{index}."
        name = str(form[prefix + "name"]).strip()
        typed = {key: str(form.get(prefix + key, "")).strip() for key in _ROW_KEYS}
        removed = form.get(prefix + "remove") == "on"
        # The type select always sends a value, so a new row is blank without it.
        blank = not name and not any(v for k, v in typed.items() if k != "type")
        if not removed and not blank:
            rows.append((len(rows) + 1, name, typed))
        index += 1
    return rows


def form_rows(form: FormData) -> list[tuple[str, dict[str, Any]]]:
    """The kept rows as (name, the field's table): what a refused form shows again, every
    row as typed (a table of the same rows would hold one of two that share a name)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for _, name, typed in _rows(form):
        entry: dict[str, Any] = {}
        for key in _ROW_KEYS:
            value = typed[key]
            # An emptied description stays, so the loader says "must not be empty"
            # rather than "missing required field".
            if not value and key not in _REQUIRED:
                continue
            if key == "values":
                entry[key] = [v.strip() for v in value.split(",") if v.strip()]
            else:
                entry[key] = value
        out.append((name, entry))
    return out


def apply_analysis(out: dict[str, Any], form: FormData) -> None:
    """``out["analysis"]`` from the form's rows and instructions. Values are kept as typed
    (an enum's values split on commas), so the loader names what is wrong with them."""
    if "analysis" not in form:  # the form's marker: the section was on the page
        return
    fields: dict[str, dict[str, Any]] = {}
    for name, entry in form_rows(form):
        # A second row with the same name is refused by analysis_problem; keep the first.
        fields.setdefault(name, entry)
    analysis: dict[str, Any] = {}
    instructions = str(form.get("analysis.instructions", "")).replace("\r\n", "\n").strip()
    if instructions:
        analysis["instructions"] = instructions
    if fields:
        analysis["fields"] = fields
    if analysis:
        out["analysis"] = analysis
    else:
        out.pop("analysis", None)


def analysis_problem(form: FormData, source: str = "draft") -> AgentDefinitionError | None:
    """What the rows get wrong that the [analysis] table cannot show the loader."""
    if "analysis" not in form:
        return None
    seen: set[str] = set()
    for position, name, _ in _rows(form):
        if not name:
            return AgentDefinitionError(
                source, f"analysis.fields[{position}].name", "a field needs a name"
            )
        if name in seen:
            return AgentDefinitionError(
                source, f"analysis.fields.{name}", "two fields have this name"
            )
        seen.add(name)
    return None


def error_row(error: AgentDefinitionError | None) -> str | None:
    """The analysis field an error is about (its name, or "[n]" for an unnamed row), so the
    form can show the message next to that row."""
    field = error.field if error is not None else None
    if not field or not field.startswith("analysis.fields"):
        return None
    rest = field.removeprefix("analysis.fields")
    if rest.startswith("."):
        return rest[1:].split(".", 1)[0]
    if rest.startswith("["):
        return rest.split("]", 1)[0] + "]"
    return None
