"""Agent definitions (persona, greeting, playbook steps, tools, FAQ) and their loader."""

from prompts.definition import (
    AgentDefinition,
    AnalysisField,
    AnalysisSchema,
    Extractor,
    FaqEntry,
    PlaybookStep,
    TurnTaking,
    tidy_speech,
)
from prompts.loader import (
    CALLER_VARIABLES,
    EXTRACTORS,
    SMS_TOOL_NAMES,
    TOOL_NAMES,
    AgentDefinitionError,
    load_agent,
    load_agents,
    parse_agent,
)

__all__ = [
    "CALLER_VARIABLES",
    "EXTRACTORS",
    "SMS_TOOL_NAMES",
    "TOOL_NAMES",
    "AgentDefinition",
    "AgentDefinitionError",
    "AnalysisField",
    "AnalysisSchema",
    "Extractor",
    "FaqEntry",
    "PlaybookStep",
    "TurnTaking",
    "load_agent",
    "load_agents",
    "parse_agent",
    "tidy_speech",
]
