"""Agent definitions (persona, greeting, playbook steps, tools, FAQ) and their loader."""

from prompts.definition import AgentDefinition, Extractor, FaqEntry, PlaybookStep, tidy_speech
from prompts.loader import (
    EXTRACTORS,
    SMS_TOOL_NAMES,
    TOOL_NAMES,
    AgentDefinitionError,
    load_agent,
    load_agents,
    parse_agent,
)

__all__ = [
    "EXTRACTORS",
    "SMS_TOOL_NAMES",
    "TOOL_NAMES",
    "AgentDefinition",
    "AgentDefinitionError",
    "Extractor",
    "FaqEntry",
    "PlaybookStep",
    "load_agent",
    "load_agents",
    "parse_agent",
    "tidy_speech",
]
