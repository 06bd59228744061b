"""The analysis by the model: one Chat Completions request with a JSON-schema response
format built from the agent's declared fields, checked against that schema, asked once
more when the reply does not hold, and stored as outcome "other" with the reason when the
second reply does not hold either."""

from __future__ import annotations

import logging
import time
from typing import Any

import openai
import orjson

from prompts import AgentDefinition, AnalysisSchema
from voice_agent.analysis.result import (
    OUTCOMES,
    CallAnalysis,
    RequestStats,
    empty_fields,
    from_facts,
)
from voice_agent.providers.openai.client import REQUEST_ERRORS, provider_error
from voice_agent.storage.analyses import CallToAnalyse

log = logging.getLogger(__name__)

ATTEMPTS = 2
_SCHEMA_NAME = "call_analysis"
_OUTCOME_GUIDE = """Outcomes:
- qualified: the caller or lead is a real prospect and agreed to a next step.
- not-interested: they declined or asked not to be contacted.
- callback: they asked to be called back, or a callback was promised before they were qualified.
- voicemail: we reached voicemail and left a message.
- transferred: the call was handed to a person.
- no-answer: nobody (or only a machine) answered.
- other: anything else."""


class AnalysisUnavailable(Exception):
    """The model could not be asked now (network, 429, 5xx): try the call again later."""


def build_messages(material: CallToAnalyse, agent: AgentDefinition | None) -> list[dict[str, str]]:
    call = material.call
    schema = agent.analysis if agent is not None else AnalysisSchema()
    guide = [
        f"You analyse finished phone calls for {agent.name if agent else 'a business'}.",
        "Write a short factual summary for staff, choose the outcome, and fill each field "
        "only from what was said; use null for anything the call did not reveal.",
        _OUTCOME_GUIDE,
    ]
    if schema.instructions:
        guide.append(schema.instructions)
    lines = [
        f"Direction: {call.direction}. From {call.from_number} to {call.to_number}.",
        f"How it ended: {call.end_reason or call.status}.",
    ]
    if material.lead_name:
        lines.append(f"The lead's name on file: {material.lead_name}.")
    lines.append("Transcript:")
    speakers = {"caller": "Caller", "agent": "Agent"}
    lines += [
        f"{speakers[t.role]}: {t.text}" if t.role in speakers else f"({t.text})" for t in call.turns
    ]
    return [
        {"role": "system", "content": "\n\n".join(guide)},
        {"role": "user", "content": "\n".join(lines)},
    ]


def check(reply: Any, schema: AnalysisSchema) -> str | None:
    """Why ``reply`` does not hold to the schema, or None when it does."""
    if not isinstance(reply, dict):
        return "the reply is not a JSON object"
    if set(reply) != {"summary", "outcome", "fields"}:
        return f"keys are {sorted(reply)}, not summary, outcome and fields"
    if not isinstance(reply["summary"], str) or not reply["summary"].strip():
        return "summary is not a non-empty string"
    if reply["outcome"] not in OUTCOMES:
        return f"outcome {reply['outcome']!r} is not one of {', '.join(OUTCOMES)}"
    fields = reply["fields"]
    if not isinstance(fields, dict):
        return "fields is not an object"
    declared = {item.name: item for item in schema.fields}
    if set(fields) != set(declared):
        return f"fields are {sorted(fields)}, not {sorted(declared)}"
    for name, value in fields.items():
        item = declared[name]
        if value is None:
            continue
        ok = {
            "string": isinstance(value, str),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "enum": value in item.values,
        }[item.type]
        if not ok:
            return f"fields.{name} = {value!r} is not a valid {item.type}"
    return None


class LlmAnalyser:
    name = "llm"

    def __init__(self, client: openai.AsyncOpenAI, model: str, timeout: float = 30.0) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._client.close()

    async def analyse(
        self, material: CallToAnalyse, agent: AgentDefinition | None, known_name: str = ""
    ) -> CallAnalysis:
        facts = from_facts(material, agent)
        if facts is not None:
            return facts
        schema = agent.analysis if agent is not None else AnalysisSchema()
        stats = RequestStats(self._model)
        messages = build_messages(material, agent)
        reason = ""
        for _ in range(ATTEMPTS):
            content = await self._ask(messages, schema, stats)
            try:
                reply = orjson.loads(content) if content is not None else None
            except orjson.JSONDecodeError as exc:
                reason = f"the reply is not JSON ({exc})"
            else:
                problem = check(reply, schema) if content is not None else "the model refused"
                if problem is None:
                    return CallAnalysis(
                        reply["summary"].strip(),
                        reply["outcome"],
                        reply["fields"],
                        "llm",
                        request=stats,
                    )
                reason = problem
            log.warning("call %s: analysis reply rejected: %s", material.call.call_sid, reason)
        return CallAnalysis(
            "",
            "other",
            empty_fields(agent),
            "llm",
            reason=f"no valid analysis after {ATTEMPTS} replies: {reason}",
            request=stats,
        )

    async def _ask(
        self, messages: list[dict[str, str]], schema: AnalysisSchema, stats: RequestStats
    ) -> str | None:
        started = time.perf_counter()
        stats.attempts += 1
        try:
            completion = await self._client.chat.completions.create(
                model=self._model,
                messages=messages,  # type: ignore[arg-type]
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": _SCHEMA_NAME,
                        "schema": schema.json_schema(OUTCOMES),
                        "strict": True,
                    },
                },
                temperature=0,
                timeout=self._timeout,
            )
        except openai.APIStatusError as exc:
            if exc.status_code == 429 or exc.status_code >= 500:
                raise AnalysisUnavailable(str(provider_error("analysis", exc))) from exc
            raise  # a request the API will never take: a bug, not an outage
        except REQUEST_ERRORS as exc:
            raise AnalysisUnavailable(str(provider_error("analysis", exc))) from exc
        finally:
            stats.ms += (time.perf_counter() - started) * 1000.0
        if completion.usage is not None:
            stats.input_tokens += completion.usage.prompt_tokens
            stats.output_tokens += completion.usage.completion_tokens
        message = completion.choices[0].message if completion.choices else None
        if message is None or message.refusal:
            return None
        return message.content or ""
