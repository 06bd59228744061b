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
    TURN_RANGES,
    AgentDefinitionError,
    allowed_variables,
    load_agent,
    load_agents,
    parse_agent,
    parse_agent_data,
    template_data,
)

__all__ = [
    "CALLER_VARIABLES",
    "EXTRACTORS",
    "SMS_TOOL_NAMES",
    "TOOL_NAMES",
    "TURN_RANGES",
    "AgentDefinition",
    "AgentDefinitionError",
    "AnalysisField",
    "AnalysisSchema",
    "Extractor",
    "FaqEntry",
    "PlaybookStep",
    "TurnTaking",
    "allowed_variables",
    "load_agent",
    "load_agents",
    "parse_agent",
    "parse_agent_data",
    "template_data",
    "tidy_speech",
]
