"""Read agent definitions from TOML files and check them before any call depends on them.

Every problem is reported as one line naming the file and the field, so a typo in a
definition stops the start instead of surfacing mid-call as an empty sentence.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from prompts.definition import (
    AgentDefinition,
    AnalysisField,
    AnalysisSchema,
    Derivation,
    Extractor,
    FaqEntry,
    FieldType,
    PlaybookStep,
    TurnTaking,
)
from prompts.voices import DEFAULT_LANGUAGE, PIPELINE_VOICES, language_problem, voice_problem

#: Tools an agent may be given; the conversation core knows how to run exactly these.
TOOL_NAMES: frozenset[str] = frozenset({"end_call", "transfer_call"})
#: Tools an agent may be given in text (SMS) mode.
SMS_TOOL_NAMES: frozenset[str] = frozenset({"hand_off", "schedule_callback", "send_link"})
EXTRACTORS: tuple[str, ...] = get_args(Extractor)
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
DERIVATIONS: tuple[str, ...] = get_args(Derivation)
#: Prompt variables every call may carry without a definition declaring them: what caller
#: memory knows about an inbound caller (empty for a new one).
CALLER_VARIABLES: tuple[str, ...] = ("caller_name", "last_interaction")
#: What derive = "interest" writes: the field must allow each of these.
INTEREST_LEVELS: tuple[str, ...] = ("high", "medium", "low")
_MAX_ANALYSIS_FIELDS = 30

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

_REQUIRED_TEXT = (
    "slug",
    "name",
    "direction",
    "persona",
    "system_prompt",
    "greeting",
    "goodbye",
    "fallback",
)
_OPTIONAL_TEXT = (
    "transfer_offer",
    "voicemail",
    "wrap_up",
    "hold",
    "transferring",
    "transfer_unavailable",
    "booking_confirmation",
    "skip",
    "sms_system_prompt",
    "sms_greeting",
    "sms_handoff",
    "followup_sms",
    "returning_greeting",
)
_TOP_KEYS = frozenset(
    (
        *_REQUIRED_TEXT,
        *_OPTIONAL_TEXT,
        "transfer_number",
        "voice",
        "voices",
        "language",
        "steps",
        "faq",
        "tools",
        "variables",
        "links",
        "sms_tools",
        "analysis",
        "turn_taking",
    )
)
#: [turn_taking] keys that are true or false.
_TURN_FLAGS = ("text_aware", "resume_on_backchannel", "early_llm")
#: [turn_taking] keys: name -> (lowest, highest) for the ms values.
TURN_RANGES = {
    "speculation_ms": (60, 1000),
    "min_wait_ms": (60, 3000),
    "max_wait_ms": (100, 5000),
    "likely_wait_ms": (0, 5000),
    "silence_ms": (0, 5000),
    "interruption_min_ms": (0, 2000),
}
_STEP_KEYS = frozenset({"id", "slot", "ask", "extract", "reprompt", "ack", "decline"})
_FAQ_KEYS = frozenset({"question", "answer", "keywords"})
_ANALYSIS_KEYS = frozenset({"fields", "instructions"})
_FIELD_KEYS = frozenset({"type", "description", "values", "slot", "derive"})
#: Fields rendered with call variables; their {placeholders} are checked against the
#: declared variables and slots.
_TEMPLATE_FIELDS = (
    "system_prompt",
    "greeting",
    "goodbye",
    "fallback",
    *_OPTIONAL_TEXT,
    "transfer_number",
)


class AgentDefinitionError(ValueError):
    """A definition file is unreadable or invalid; the message names the file and field."""

    def __init__(self, source: str, field: str | None, problem: str) -> None:
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.field = field


def load_agent(path: str | Path) -> AgentDefinition:
    """Load and validate one definition file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgentDefinitionError(str(path), None, f"cannot read: {exc.strerror}") from exc
    return parse_agent(data, source=str(path))


def load_agents(directory: Path | None = None) -> dict[str, AgentDefinition]:
    """Load every ``*.toml`` definition in `directory` (default: the ones shipped with this
    package), keyed by slug."""
    if directory is None:
        files = resources.files("prompts")
        entries: Iterable[tuple[str, bytes]] = (
            (f"prompts/{entry.name}", entry.read_bytes())
            for entry in sorted(files.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml") and entry.is_file()
        )
    else:
        if not Path(directory).is_dir():
            raise AgentDefinitionError(str(directory), None, "not a directory")
        entries = ((str(p), p.read_bytes()) for p in sorted(Path(directory).glob("*.toml")))
    agents: dict[str, AgentDefinition] = {}
    sources: dict[str, str] = {}
    for source, data in entries:
        agent = parse_agent(data, source=source)
        if agent.slug in agents:
            raise AgentDefinitionError(
                source, "slug", f"{agent.slug!r} is already defined in {sources[agent.slug]}"
            )
        agents[agent.slug] = agent
        sources[agent.slug] = source
    return agents


def parse_agent(data: str | bytes, source: str = "<string>") -> AgentDefinition:
    """Validate TOML text (for example a tenant's edited copy) into a definition."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentDefinitionError(source, None, f"invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # pragma: no cover - tomllib takes str; kept for bytes
        raise AgentDefinitionError(source, None, f"not UTF-8: {exc}") from exc
    return _Reader(source).agent(raw)


def parse_agent_data(raw: Mapping[str, Any], source: str = "<data>") -> AgentDefinition:
    """Validate an already-parsed definition (a tenant's agent stored as JSON) with exactly
    the rules a TOML file gets."""
    if not isinstance(raw, Mapping):
        raise AgentDefinitionError(source, None, "must be a table of fields")
    return _Reader(source).agent(raw)


def template_data(slug: str, directory: Path | None = None) -> dict[str, Any]:
    """The raw fields of a shipped definition (a template a tenant's agent starts from)."""
    if directory is None:
        files = resources.files("prompts")
        for entry in files.iterdir():
            if entry.name.endswith(".toml") and entry.is_file():
                raw = tomllib.loads(entry.read_bytes().decode("utf-8"))
                if raw.get("slug") == slug:
                    return raw
    else:
        for path in sorted(Path(directory).glob("*.toml")):
            raw = tomllib.loads(path.read_text("utf-8"))
            if raw.get("slug") == slug:
                return raw
    raise KeyError(slug)


def allowed_variables(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Every {placeholder} a definition's texts may use, in one place: its declared
    variables, its step slots, its link names and the caller-memory variables."""
    names: list[str] = []
    variables = raw.get("variables", {})
    if isinstance(variables, Mapping):
        names += [str(k) for k in variables]
    steps = raw.get("steps", [])
    if isinstance(steps, list):
        names += [str(s["slot"]) for s in steps if isinstance(s, Mapping) and "slot" in s]
    links = raw.get("links", {})
    if isinstance(links, Mapping):
        names += [str(k) for k in links]
    names += CALLER_VARIABLES
    return tuple(dict.fromkeys(names))


class _Reader:
    """Field-by-field conversion; every failure names `source` and the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str | None, problem: str) -> AgentDefinitionError:
        return AgentDefinitionError(self.source, field, problem)

    def agent(self, raw: Mapping[str, Any]) -> AgentDefinition:
        self.no_unknown_keys(raw, _TOP_KEYS, "")
        values: dict[str, Any] = {}
        for key in _REQUIRED_TEXT:
            if key not in raw:
                raise self.fail(key, "missing required field")
            values[key] = self.text(raw, key, key, required=True)
        for key in _OPTIONAL_TEXT:
            if key in raw:
                values[key] = self.text(raw, key, key, required=False)

        if not _SLUG.match(values["slug"]):
            raise self.fail(
                "slug",
                f"{values['slug']!r} must be lowercase letters, digits, "
                "'_' or '-', starting with a letter",
            )
        if values["direction"] not in ("inbound", "outbound"):
            raise self.fail(
                "direction", f"must be 'inbound' or 'outbound', got {values['direction']!r}"
            )

        variables = self.variables(raw.get("variables", {}))
        steps = self.steps(raw.get("steps", []))
        faq = self.faq(raw.get("faq", []))
        tools = self.tools(raw.get("tools", ["end_call", "transfer_call"]))
        links = self.links(raw.get("links", {}), variables)
        sms_tools = self.sms_tools(raw.get("sms_tools", []), links)

        transfer_number = None
        if "transfer_number" in raw:
            transfer_number = self.text(raw, "transfer_number", "transfer_number", True)
            if "{" not in transfer_number and not _E164.match(transfer_number):
                raise self.fail(
                    "transfer_number",
                    f"{transfer_number!r} is not an E.164 number like +15550100200",
                )
        voice = self.text(raw, "voice", "voice", True) if "voice" in raw else None
        voices = self.voices(raw.get("voices", {}))
        language = DEFAULT_LANGUAGE
        if "language" in raw:
            language = self.text(raw, "language", "language", True).lower()
            problem = language_problem(language)
            if problem:
                raise self.fail("language", problem)

        if values.get("transfer_offer") and "transfer_call" not in tools:
            raise self.fail("transfer_offer", "set, but 'transfer_call' is not in tools")
        if "transfer_call" in tools and transfer_number is None:
            raise self.fail("transfer_number", "missing, but 'transfer_call' is in tools")

        analysis = self.analysis(raw.get("analysis", {}), {step.slot for step in steps})
        turn_taking = self.turn_taking(raw.get("turn_taking", {}))
        known = set(variables) | {step.slot for step in steps} | set(links) | set(CALLER_VARIABLES)
        templates = {key: values[key] for key in _TEMPLATE_FIELDS if values.get(key)}
        if transfer_number:
            templates["transfer_number"] = transfer_number
        for i, step in enumerate(steps):
            for key in ("ask", "reprompt", "ack", "decline"):
                templates[f"steps[{i}].{key}"] = getattr(step, key)
        for i, entry in enumerate(faq):
            templates[f"faq[{i}].answer"] = entry.answer
        for field_path, template in templates.items():
            self.placeholders(field_path, template, known)

        return AgentDefinition(
            steps=steps,
            faq=faq,
            tools=tools,
            variables=variables,
            links=links,
            sms_tools=sms_tools,
            analysis=analysis,
            turn_taking=turn_taking,
            transfer_number=transfer_number,
            voice=voice,
            voices=voices,
            language=language,
            **values,
        )

    def voices(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail("voices", 'must be a table of pipeline = "voice name"')
        self.no_unknown_keys(value, frozenset(PIPELINE_VOICES), "voices.")
        out: dict[str, str] = {}
        for pipeline in value:
            name = self.text(value, pipeline, f"voices.{pipeline}", True)
            problem = voice_problem(pipeline, name)
            if problem:
                raise self.fail(f"voices.{pipeline}", problem)
            out[pipeline] = name
        return out

    def turn_taking(self, value: Any) -> TurnTaking:
        if not isinstance(value, dict):
            raise self.fail("turn_taking", "must be a table ([turn_taking])")
        self.no_unknown_keys(value, frozenset({*_TURN_FLAGS, *TURN_RANGES}), "turn_taking.")
        out: dict[str, Any] = {}
        for flag in _TURN_FLAGS:
            if flag in value:
                if not isinstance(value[flag], bool):
                    raise self.fail(f"turn_taking.{flag}", "must be true or false")
                out[flag] = value[flag]
        for key, (low, high) in TURN_RANGES.items():
            if key in value:
                item = value[key]
                if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
                    raise self.fail(f"turn_taking.{key}", f"must be an integer in [{low}, {high}]")
                out[key] = item
        taking = TurnTaking(**out)
        if taking.min_wait_ms > taking.max_wait_ms:
            raise self.fail("turn_taking.min_wait_ms", "must not exceed max_wait_ms")
        return taking

    def no_unknown_keys(self, raw: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    f"{prefix}{key}", "unknown field (allowed: " + ", ".join(sorted(allowed)) + ")"
                )

    def text(self, raw: Mapping[str, Any], key: str, field: str, required: bool) -> str:
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string, got {type(value).__name__}")
        if required and not value.strip():
            raise self.fail(field, "must not be empty")
        return value.strip()

    def table_list(self, value: Any, field: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(field, f"must be an array of tables ([[{field}]])")
        return value

    def variables(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail("variables", "must be a table of strings")
        out: dict[str, str] = {}
        for key, item in value.items():
            if not _IDENTIFIER.match(key):
                raise self.fail(f"variables.{key}", "name must be lowercase snake_case")
            if not isinstance(item, str):
                raise self.fail(f"variables.{key}", f"must be a string, got {type(item).__name__}")
            out[key] = item
        return out

    def steps(self, value: Any) -> tuple[PlaybookStep, ...]:
        steps: list[PlaybookStep] = []
        ids: set[str] = set()
        slots: set[str] = set()
        for i, raw in enumerate(self.table_list(value, "steps")):
            where = f"steps[{i}]"
            self.no_unknown_keys(raw, _STEP_KEYS, f"{where}.")
            for key in ("id", "slot", "ask"):
                if key not in raw:
                    raise self.fail(f"{where}.{key}", "missing required field")
            step_id = self.text(raw, "id", f"{where}.id", True)
            slot = self.text(raw, "slot", f"{where}.slot", True)
            for key, name in (("id", step_id), ("slot", slot)):
                if not _IDENTIFIER.match(name):
                    raise self.fail(f"{where}.{key}", f"{name!r} must be lowercase snake_case")
            if step_id in ids:
                raise self.fail(f"{where}.id", f"duplicate step id {step_id!r}")
            if slot in slots:
                raise self.fail(f"{where}.slot", f"duplicate slot {slot!r}")
            ids.add(step_id)
            slots.add(slot)
            extract = (
                self.text(raw, "extract", f"{where}.extract", True) if "extract" in raw else "text"
            )
            if extract not in EXTRACTORS:
                raise self.fail(
                    f"{where}.extract", f"{extract!r} is not one of " + ", ".join(EXTRACTORS)
                )
            decline = self.text(raw, "decline", f"{where}.decline", False)
            if decline and extract != "yes_no":
                raise self.fail(f"{where}.decline", "only yes_no steps can decline")
            optional = {
                key: self.text(raw, key, f"{where}.{key}", key == "reprompt")
                for key in ("reprompt", "ack")
                if key in raw
            }
            steps.append(
                PlaybookStep(
                    id=step_id,
                    slot=slot,
                    ask=self.text(raw, "ask", f"{where}.ask", True),
                    extract=extract,
                    decline=decline,
                    **optional,  # type: ignore[arg-type]
                )
            )
        return tuple(steps)

    def faq(self, value: Any) -> tuple[FaqEntry, ...]:
        entries: list[FaqEntry] = []
        for i, raw in enumerate(self.table_list(value, "faq")):
            where = f"faq[{i}]"
            self.no_unknown_keys(raw, _FAQ_KEYS, f"{where}.")
            for key in ("question", "answer", "keywords"):
                if key not in raw:
                    raise self.fail(f"{where}.{key}", "missing required field")
            keywords = raw["keywords"]
            if (
                not isinstance(keywords, list)
                or not keywords
                or not all(isinstance(k, str) and k.strip() for k in keywords)
            ):
                raise self.fail(f"{where}.keywords", "must be a non-empty array of words")
            entries.append(
                FaqEntry(
                    question=self.text(raw, "question", f"{where}.question", True),
                    answer=self.text(raw, "answer", f"{where}.answer", True),
                    keywords=tuple(k.strip().lower() for k in keywords),
                )
            )
        return tuple(entries)

    def analysis(self, value: Any, slots: set[str]) -> AnalysisSchema:
        if not isinstance(value, dict):
            raise self.fail("analysis", "must be a table ([analysis])")
        self.no_unknown_keys(value, _ANALYSIS_KEYS, "analysis.")
        instructions = self.text(value, "instructions", "analysis.instructions", False)
        raw_fields = value.get("fields", {})
        if not isinstance(raw_fields, dict) or not all(
            isinstance(v, dict) for v in raw_fields.values()
        ):
            raise self.fail("analysis.fields", "must be tables ([analysis.fields.NAME])")
        if len(raw_fields) > _MAX_ANALYSIS_FIELDS:
            raise self.fail("analysis.fields", f"at most {_MAX_ANALYSIS_FIELDS} fields")
        fields = tuple(self.analysis_field(name, raw, slots) for name, raw in raw_fields.items())
        return AnalysisSchema(fields=fields, instructions=instructions)

    def analysis_field(self, name: str, raw: Mapping[str, Any], slots: set[str]) -> AnalysisField:
        where = f"analysis.fields.{name}"
        if not _IDENTIFIER.match(name):
            raise self.fail(where, "name must be lowercase snake_case")
        self.no_unknown_keys(raw, _FIELD_KEYS, f"{where}.")
        for key in ("type", "description"):
            if key not in raw:
                raise self.fail(f"{where}.{key}", "missing required field")
        kind = self.text(raw, "type", f"{where}.type", True)
        if kind not in FIELD_TYPES:
            raise self.fail(f"{where}.type", f"must be one of {', '.join(FIELD_TYPES)}")
        values: tuple[str, ...] = ()
        if kind == "enum":
            listed = raw.get("values")
            if (
                not isinstance(listed, list)
                or not listed
                or not all(isinstance(v, str) and v.strip() for v in listed)
            ):
                raise self.fail(f"{where}.values", "an enum needs a non-empty array of strings")
            values = tuple(v.strip() for v in listed)
            if len(set(values)) != len(values):
                raise self.fail(f"{where}.values", "lists a value twice")
        elif "values" in raw:
            raise self.fail(f"{where}.values", "only enum fields have values")
        slot = self.text(raw, "slot", f"{where}.slot", True) if "slot" in raw else None
        if slot is not None and slot not in slots:
            raise self.fail(f"{where}.slot", f"{slot!r} is not a step slot")
        derive = self.text(raw, "derive", f"{where}.derive", True) if "derive" in raw else None
        if derive is not None:
            if derive not in DERIVATIONS:
                raise self.fail(f"{where}.derive", f"must be one of {', '.join(DERIVATIONS)}")
            if slot is not None:
                raise self.fail(
                    f"{where}.derive", "a field is filled by a slot or derived, not both"
                )
            missing = [level for level in INTEREST_LEVELS if level not in values]
            if derive == "caller_name" and kind != "string":
                raise self.fail(f"{where}.derive", "derive = 'caller_name' needs type 'string'")
            if derive == "interest" and missing:
                raise self.fail(
                    f"{where}.derive",
                    "derive = 'interest' needs an enum allowing " + ", ".join(INTEREST_LEVELS),
                )
        return AnalysisField(
            name=name,
            type=kind,  # type: ignore[arg-type]
            description=self.text(raw, "description", f"{where}.description", True),
            values=values,
            slot=slot,
            derive=derive,  # type: ignore[arg-type]
        )

    def tools(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail("tools", "must be an array of tool names")
        for name in value:
            if name not in TOOL_NAMES:
                raise self.fail(
                    "tools",
                    f"unknown tool {name!r} (allowed: " + ", ".join(sorted(TOOL_NAMES)) + ")",
                )
        if len(set(value)) != len(value):
            raise self.fail("tools", "lists a tool twice")
        return tuple(value)

    def links(self, value: Any, variables: Mapping[str, str]) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail("links", 'must be a table of name = "https://..."')
        out: dict[str, str] = {}
        for name, url in value.items():
            where = f"links.{name}"
            if not _IDENTIFIER.match(name):
                raise self.fail(where, "name must be lowercase snake_case")
            if name in variables:
                raise self.fail(where, "is also a variable name; links and variables share names")
            if not isinstance(url, str):
                raise self.fail(where, f"must be a string, got {type(url).__name__}")
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in url.strip():
                raise self.fail(where, f"{url!r} is not an http(s) URL")
            out[name] = url.strip()
        return out

    def sms_tools(self, value: Any, links: Mapping[str, str]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail("sms_tools", "must be an array of tool names")
        for name in value:
            if name not in SMS_TOOL_NAMES:
                raise self.fail(
                    "sms_tools",
                    f"unknown tool {name!r} (allowed: " + ", ".join(sorted(SMS_TOOL_NAMES)) + ")",
                )
        if len(set(value)) != len(value):
            raise self.fail("sms_tools", "lists a tool twice")
        if "send_link" in value and not links:
            raise self.fail("sms_tools", "'send_link' needs at least one entry in [links]")
        return tuple(value)

    def placeholders(self, field: str, template: str, known: set[str]) -> None:
        """Only plain {name} placeholders of declared variables or slots are allowed, so a
        misspelt variable fails here instead of being spoken as silence."""
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise self.fail(field, f"bad template: {exc}") from exc
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not _IDENTIFIER.match(name) or spec or conversion:
                raise self.fail(
                    field, f"placeholder {{{name}}} must be a plain {{snake_case}} name"
                )
            if name not in known:
                raise self.fail(
                    field,
                    f"placeholder {{{name}}} is not declared in [variables] or as a step slot"
                    " (allowed: " + ", ".join(sorted(known)) + ")",
                )
