from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import openai
import pytest

from loadtest.standins.openai_server import Reply, ScriptedToolCall, StandinOpenAI
from prompts import AgentDefinition
from voice_agent.providers.base import (
    ChatMessage,
    DialogueEngine,
    DialogueEvent,
    ProviderError,
    TextDelta,
    TokenUsage,
    ToolCall,
)
from voice_agent.providers.openai.dialogue import (
    OpenAIDialogue,
    OpenAIDialogueEngine,
    ToolCallAccumulator,
    to_openai_messages,
)


async def collect(dialogue: OpenAIDialogue, history: list[ChatMessage]) -> list[DialogueEvent]:
    """What the agent says and does; the usage event that ends each response is checked
    on its own (test_usage_ends_each_response)."""
    return [e async for e in dialogue.respond(history) if not isinstance(e, TokenUsage)]


def scripted(reply: Reply) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], Reply]:
    return lambda _messages, _tools: reply


def text_of(events: list[DialogueEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streams_text_token_by_token_with_rendered_system_prompt_and_tools(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    engine = OpenAIDialogueEngine(client, model="gpt-4o")
    assert isinstance(engine, DialogueEngine)
    dialogue = engine.start(agent, {"caller_name": "Sam"})

    events = await collect(dialogue, [ChatMessage("user", "My gutter is leaking badly")])

    assert len(events) > 5 and all(isinstance(e, TextDelta) for e in events)
    assert text_of(events) == (
        "I heard you say My gutter is leaking. Could you tell me a little more about that?"
    )
    (request,) = standin.recorded("chat")
    assert request.body["stream"] is True
    assert request.body["model"] == "gpt-4o"
    assert request.body["messages"][0] == {
        "role": "system",
        "content": "You are Ava at Acme. The caller is Sam.",
    }
    assert [t["function"]["name"] for t in request.body["tools"]] == ["end_call", "transfer_call"]
    assert dialogue.usage.requests == 1
    assert dialogue.usage.completion_tokens > 0 and dialogue.usage.prompt_tokens > 0


async def test_usage_ends_each_response(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    dialogue = OpenAIDialogueEngine(client, model="gpt-4o").start(agent, {})
    for text in ("My gutter is leaking badly", "ok thanks, bye"):
        events = [e async for e in dialogue.respond([ChatMessage("user", text)])]
        usage = events[-1]
        assert isinstance(usage, TokenUsage) and usage.model == "gpt-4o"
        assert not [e for e in events[:-1] if isinstance(e, TokenUsage)]
        # Each response's own tokens, as the server's usage chunk gave them.
        assert (usage.input_tokens, usage.output_tokens) == (
            standin.usage_sent[-1]["prompt_tokens"],
            standin.usage_sent[-1]["completion_tokens"],
        )
    assert dialogue.usage.prompt_tokens == sum(u["prompt_tokens"] for u in standin.usage_sent)


async def test_no_tools_field_when_the_agent_has_none(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    dialogue = OpenAIDialogueEngine(client).start(replace(agent, tools=()), {})

    await collect(dialogue, [ChatMessage("user", "hello")])

    assert "tools" not in standin.recorded("chat")[0].body


async def test_text_then_tool_call_assembled_from_fragments(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    dialogue = OpenAIDialogueEngine(client).start(agent, {})

    events = await collect(dialogue, [ChatMessage("user", "ok thanks, bye")])

    assert text_of(events) == "Thanks for calling. Goodbye!"
    assert isinstance(events[-1], ToolCall)
    assert all(isinstance(e, TextDelta) for e in events[:-1])  # tool calls come last
    assert events[-1].name == "end_call"
    assert events[-1].arguments == {"reason": "caller said goodbye"}
    assert events[-1].id.startswith("call_")


async def test_long_arguments_across_many_fragments_and_parallel_calls(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    reason = "The caller wants to speak to the owner about an invoice from last spring " * 3
    standin.responder = scripted(
        Reply(
            "",
            (
                ScriptedToolCall("transfer_call", {"reason": reason, "priority": 2}),
                ScriptedToolCall("end_call", {}),
            ),
        )
    )
    dialogue = OpenAIDialogueEngine(client).start(agent, {})

    events = await collect(dialogue, [ChatMessage("user", "put me through")])

    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)] == [
        ("transfer_call", {"reason": reason, "priority": 2}),
        ("end_call", {}),
    ]
    assert not [e for e in events if isinstance(e, TextDelta)]
    first, second = events
    assert isinstance(first, ToolCall) and isinstance(second, ToolCall)
    assert first.id != second.id


async def test_invalid_json_arguments_become_empty_with_a_warning(
    standin: StandinOpenAI,
    client: openai.AsyncOpenAI,
    agent: AgentDefinition,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin.responder = scripted(
        Reply("One moment.", (ScriptedToolCall("transfer_call", '{"reason": "cut off'),))
    )
    dialogue = OpenAIDialogueEngine(client).start(agent, {})

    with caplog.at_level(logging.WARNING):
        events = await collect(dialogue, [ChatMessage("user", "a person please")])

    assert text_of(events) == "One moment."
    assert isinstance(events[-1], ToolCall)
    assert (events[-1].name, events[-1].arguments) == ("transfer_call", {})
    assert "not valid JSON" in caplog.text


def test_accumulator_routes_interleaved_fragments_by_index(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = ToolCallAccumulator()
    calls.add(1, "call_b", "end_call", "")
    calls.add(0, "call_a", "transfer_call", '{"rea')
    calls.add(1, None, None, "[1, 2]")  # valid JSON, but not an object
    calls.add(0, None, None, 'son": "x"}')
    calls.add(2, None, None, "{}")  # never named: dropped

    with caplog.at_level(logging.WARNING):
        finished = calls.finish()

    assert finished == [
        ToolCall("call_a", "transfer_call", {"reason": "x"}),
        ToolCall("call_b", "end_call", {}),
    ]
    assert "not a JSON object" in caplog.text
    assert "without a name" in caplog.text


def test_history_conversion_covers_tool_calls_and_results() -> None:
    history = [
        ChatMessage("user", "transfer me"),
        ChatMessage("assistant", None, [ToolCall("call_1", "transfer_call", {"reason": "asked"})]),
        ChatMessage("tool", "transferred", tool_call_id="call_1"),
        ChatMessage("assistant", "Connecting you now."),
    ]

    assert to_openai_messages(history) == [
        {"role": "user", "content": "transfer me"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "transfer_call", "arguments": '{"reason": "asked"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "transferred"},
        {"role": "assistant", "content": "Connecting you now."},
    ]


async def test_history_with_tool_results_reaches_the_api(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    dialogue = OpenAIDialogueEngine(client).start(agent, {})
    history = [
        ChatMessage("user", "bye"),
        ChatMessage("assistant", "Goodbye!", [ToolCall("call_9", "end_call", {})]),
        ChatMessage("tool", "call ended", tool_call_id="call_9"),
    ]

    events = await collect(dialogue, history)

    assert text_of(events) == "All right."
    sent = standin.recorded("chat")[0].body["messages"]
    assert sent[1:] == to_openai_messages(history)


async def test_server_error_becomes_provider_error(
    standin: StandinOpenAI, client: openai.AsyncOpenAI, agent: AgentDefinition
) -> None:
    standin.fail("chat", status=500)
    dialogue = OpenAIDialogueEngine(client).start(agent, {})

    with pytest.raises(ProviderError, match="500") as raised:
        await collect(dialogue, [ChatMessage("user", "hello")])
    assert raised.value.stage == "llm"


async def test_bad_key_becomes_provider_error(
    client_for: Callable[..., openai.AsyncOpenAI], agent: AgentDefinition
) -> None:
    dialogue = OpenAIDialogueEngine(client_for(api_key="sk-wrong")).start(agent, {})

    with pytest.raises(ProviderError, match="401"):
        await collect(dialogue, [ChatMessage("user", "hello")])


@pytest.mark.parametrize(
    "fault",
    [{"status": None, "hang_s": 30.0}, {"status": None, "stall_s": 30.0}],
    ids=["no-first-token", "stalled-mid-stream"],
)
async def test_silence_past_the_timeout_becomes_provider_error_in_time(
    standin: StandinOpenAI,
    client_for: Callable[..., openai.AsyncOpenAI],
    agent: AgentDefinition,
    fault: dict[str, Any],
) -> None:
    standin.fail("chat", **fault)
    dialogue = OpenAIDialogueEngine(client_for(timeout=0.5), timeout=0.5).start(agent, {})
    received: list[DialogueEvent] = []

    started = time.perf_counter()
    with pytest.raises(ProviderError, match="timed out"):
        async for event in dialogue.respond([ChatMessage("user", "hello there")]):
            received.append(event)
    assert time.perf_counter() - started < 1.5
    if "stall_s" in fault:
        assert received == [TextDelta("I")]  # what came before the stall was passed on
