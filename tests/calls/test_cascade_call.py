"""The whole demo call on the cascade pipeline: the real OpenAI SDK against the loopback
stand-in, over the real webhook and media websocket."""

from __future__ import annotations

import re

from loadtest.standins.openai_server import StandinOpenAI, message_text
from prompts.loader import load_agents
from tests.calls.cascade_support import (
    FixtureTranscriber,
    RunCall,
    line_bytes,
    short_responder,
)
from voice_agent.demo import DEMO_SCRIPT, demo_turns

#: Bytes of slack per sentence between the stand-in voice's length and what reaches the line
#: (resampler edges).
_SLACK = 40


async def test_whole_demo_call_on_cascade(
    standin: StandinOpenAI, transcriber: FixtureTranscriber, run_call: RunCall
) -> None:
    standin.responder = short_responder
    turns = demo_turns()
    run = await run_call(turns)
    result, stored = run.result, run.stored

    # Every caller turn reached STT as one whole utterance, and is stored with its text.
    assert transcriber.heard == [[name] for name, _ in DEMO_SCRIPT]
    assert [t.text for t in run.turns("caller")] == [t.utterance.text for t in turns]

    # The greeting is heard first, whole: the receptionist's greeting, from the phrase cache.
    agent = load_agents()["receptionist"]
    greeting = agent.render_speech(agent.greeting)
    assert stored.turns[0].role == "agent" and stored.turns[0].text == greeting
    assert result.greeting_ms is not None
    assert abs(len(result.replies[0]) - line_bytes(greeting)) <= _SLACK

    # Each turn the caller waited for got a reply, heard to its end: the audio on the line is
    # exactly the sentences the agent synthesised, nothing more.
    for turn in result.turns:
        if not turn.barge_in:
            assert turn.reply_ms is not None, turn.text
    spoken = [r.body["input"] for r in standin.recorded("speech")]
    barge_index = next(i for i, t in enumerate(turns) if t.barge_in_after_ms is not None)
    answered = [r for i, r in enumerate(result.replies[1:]) if i != barge_index - 1]
    whole = [t for t in run.turns("agent")[1:] if not t.interrupted]
    assert len(answered) == len(whole) == len(turns) - 1
    for audio, turn in zip(answered, whole, strict=True):
        sentences = re.split(r"(?<=[.!?])\s+", turn.text)
        assert all(s in spoken for s in sentences), (sentences, spoken)
        expected = sum(line_bytes(s) for s in sentences)
        assert abs(len(audio) - expected) <= _SLACK * len(sentences), turn.text

    # The barge-in cleared the line, and no audio of the interrupted reply came after it:
    # the next audio is the next reply, after the caller finished.
    barge = result.turns[barge_index]
    assert result.clears == 1 and barge.clear_ms is not None
    clear_at = result.clear_times[0]
    assert not [t for t in result.media_times if clear_at < t < barge.speech_end_at]
    (cut,) = [t for t in stored.turns if t.interrupted]
    assert cut.role == "agent" and cut.text.endswith("…")
    assert stored.turns[stored.turns.index(cut) + 1].role == "caller"

    # The model saw the cut reply as the caller heard it: a prefix of what it had said.
    chat = standin.recorded("chat")
    full = short_responder(chat[barge_index - 1].body["messages"], []).text
    assert full.startswith(cut.text.removesuffix("…")) and len(cut.text) < len(full)
    assistant = [m for m in chat[barge_index].body["messages"] if m["role"] == "assistant"]
    assert message_text(assistant[-1]) == cut.text

    # The goodbye: the model's end_call ends the call from the server side, after its audio
    # played in full.
    assert result.ended_by_server
    assert result.unplayed_at_close == 0
    assert stored.end_reason == "agent-hangup"
    assert stored.status == "completed"
    assert stored.turns[-1].role == "agent"
    assert stored.turns[-1].text == "Thanks for calling. Goodbye!"
    assert [m for m in chat[-1].body["tools"] if m["function"]["name"] == "end_call"]

    # Stored in order, with the latency breakdown on every answered agent turn.
    assert [t.seq for t in stored.turns] == list(range(1, len(stored.turns) + 1))
    roles = [t.role for t in stored.turns]
    assert roles == ["agent"] + ["caller", "agent"] * len(turns)
    for turn in whole:
        assert turn.stt_ms is not None and turn.stt_ms > 0, turn.text
        assert turn.llm_ms is not None and turn.llm_ms > 0, turn.text
        assert turn.tts_first_byte_ms is not None and turn.tts_first_byte_ms > 0, turn.text
        assert turn.total_ms is not None and turn.endpointing_ms is not None, turn.text
        assert turn.total_ms >= turn.endpointing_ms + turn.stt_ms + turn.llm_ms
        assert turn.server_ms is not None and 0 <= turn.server_ms < 100, turn.text
