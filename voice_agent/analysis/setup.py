"""Builds the analysis worker a server runs: the model on the cascade, the playbook
replay offline."""

from __future__ import annotations

from collections.abc import Mapping

from prompts import AgentDefinition
from voice_agent.agents.book import lookup as tenant_agent
from voice_agent.analysis.offline import PlaybookAnalyser
from voice_agent.analysis.service import Analyser, AnalysisService
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.clock import Clock
from voice_agent.settings import Settings
from voice_agent.storage.analyses import AnalysisRepository
from voice_agent.storage.database import Database
from voice_agent.storage.write_queue import WriteQueue

#: The analysis is one request of a few thousand tokens, off the call path: it may take
#: longer than a turn's reply is allowed to.
ANALYSIS_TIMEOUT_S = 30.0


def build_analyser(settings: Settings) -> Analyser:
    if settings.pipeline == "offline" or not settings.openai_api_key:
        return PlaybookAnalyser()
    from voice_agent.analysis.llm import LlmAnalyser
    from voice_agent.providers.openai.client import make_client

    client = make_client(settings.openai_api_key, settings.openai_base_url, ANALYSIS_TIMEOUT_S)
    return LlmAnalyser(client, settings.analysis_model or settings.llm_model, ANALYSIS_TIMEOUT_S)


def build_analysis(
    settings: Settings,
    database: Database,
    writes: WriteQueue,
    agents: Mapping[str, AgentDefinition],
    memory: CallerMemory | None,
    clock: Clock,
) -> AnalysisService:
    return AnalysisService(
        AnalysisRepository(database),
        build_analyser(settings),
        # A tenant's published agent (#13): its own fields and extraction schema.
        lambda tenant, slug: tenant_agent(agents, tenant, slug),
        writes=writes,
        memory=memory,
        clock=clock,
    )
