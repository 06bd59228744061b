"""A known caller's greeting by name, started at the voice webhook.

Twilio asks the voice webhook first and opens the media stream after it, so the lookup
and the personal greeting's synthesis run in that gap, as an outbound call's greeting is
made while the phone rings. When the stream starts and the greeting is not ready within
a short wait, the caller hears the cached generic greeting and the call goes on as with a
stranger (the playbook then asks for their name as usual)."""

from __future__ import annotations

from collections.abc import Mapping

from prompts import CALLER_VARIABLES, AgentDefinition
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.outbound.dialer import encode_variables
from voice_agent.outbound.greetings import CallPhrases, GreetingStore

#: The token data key naming the prepared greeting.
GREETING_KEY = "greeting"


async def remember_caller(
    data: dict[str, str],
    memory: CallerMemory | None,
    agent: AgentDefinition | None,
    greetings: GreetingStore | None,
) -> dict[str, str]:
    """The voice webhook's call data with what we know about the caller (as prompt
    variables), the personal greeting's synthesis started."""
    if memory is None or not data.get("from"):
        return data
    known = await memory.lookup(data["tenant"], data["from"])
    if known is None:
        return data
    variables = known.variables()
    data = data | {"vars": encode_variables(variables)}
    if greetings is not None and agent is not None and agent.returning_greeting:
        key = "caller:" + data["call_sid"]
        text = agent.render_speech(agent.greeting_for(variables), variables)
        greetings.prepare(key, text, agent.voice)
        data[GREETING_KEY] = key
    return data


async def personal_phrases(
    greetings: GreetingStore,
    data: Mapping[str, str],
    phrases: PhraseCache | CallPhrases,
    variables: dict[str, str],
    wait_s: float,
) -> tuple[PhraseCache | CallPhrases, dict[str, str]]:
    """At the stream's start: the phrase source with the personal greeting in front, or
    (not ready in time) the shared one and the variables without the caller's memory."""
    key = data.get(GREETING_KEY, "")
    if not key or not isinstance(phrases, PhraseCache):
        return phrases, variables
    if await greetings.settle(key, wait_s):
        return greetings.phrases_for(key, phrases), variables
    return phrases, {k: v for k, v in variables.items() if k not in CALLER_VARIABLES}
