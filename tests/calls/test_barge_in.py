"""Barge-in on the cascade pipeline: what the model is told was heard, what does not count
as an interruption, and an interruption before any audio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Latency, StandinOpenAI, message_text
from media import mulaw
from tests.calls.cascade_support import (
    FixtureTranscriber,
    RunCall,
    echo,
    line_bytes,
    short_responder,
)

_SLACK = 40


def _words(text: str) -> list[str]:
    return text.removesuffix("…").split()


async def test_model_is_told_only_what_the_caller_heard(
    standin: StandinOpenAI, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(utterances["interrupt"], barge_in_after_ms=800),
    ]
    standin.responder = short_responder
    run = await run_call(turns, hangup_wait_s=4.0)

    chat = standin.recorded("chat")
    assert len(chat) == 2
    full = short_responder(chat[0].body["messages"], []).text
    sent = chat[1].body["messages"]
    # History as the model sees it: ..., caller, the agent cut short, the caller again.
    assert [m["role"] for m in sent[-3:]] == ["user", "assistant", "user"]
    heard = message_text(sent[-2])
    assert heard.endswith("…")
    assert len(heard) < len(full)
    assert _words(heard) and full.split()[: len(_words(heard))] == _words(heard)
    assert message_text(sent[-1]) == utterances["interrupt"].text

    # Stored the same way: interrupted, with the heard text, then the caller's turn.
    agent = run.turns("agent")
    assert [t.interrupted for t in agent] == [False, True, False]
    assert agent[1].text == heard
    assert agent[1].total_ms is None  # an interrupted reply carries no latency breakdown
    assert run.result.clears == 1


async def test_short_noise_while_the_agent_speaks_does_not_interrupt(
    standin: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    run_call: RunCall,
) -> None:
    standin.responder = short_responder
    need = utterances["need"]
    # 60 ms of the loudest part of a real utterance: half of barge_in_min_ms (120 ms).
    pcm = mulaw.decode(need.audio)
    loudest = int(np.argmax(np.abs(pcm.astype(np.int32)))) // 160 * 160
    blip = Utterance("blip", "", need.audio[loudest : loudest + 480], 60, 0, 60)
    turns = [CallerTurn(need), CallerTurn(blip, barge_in_after_ms=500)]
    run = await run_call(turns, hangup_wait_s=4.0)
    result = run.result

    assert result.clears == 0
    assert len(transcriber.heard) == 1  # the blip never became a turn
    reply = short_responder(standin.recorded("chat")[0].body["messages"], []).text
    assert run.turns("agent")[1].text == reply
    assert not run.turns("agent")[1].interrupted
    # The reply played to its end on the line.
    expected = sum(line_bytes(s) for s in (reply.rsplit(" Go on.", 1)[0], "Go on."))
    assert abs(len(result.replies[1]) - expected) <= 2 * _SLACK
    assert result.unplayed_at_close == 0


async def test_barge_in_while_thinking_cancels_that_reply(
    standin: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    run_call: RunCall,
) -> None:
    # The model takes 1.5 s to start; the caller pauses about a second after one sentence
    # (long enough to end the turn) and goes on with another.
    standin.latency = replace(Latency.none(), llm_first_token_ms=1500.0)
    standin.responder = short_responder
    first, second = utterances["need"], utterances["hours"]
    pause = first.end_ms * 8 + 700 * 8
    audio = first.audio[:pause] + second.audio
    both = Utterance("both", "", audio, len(audio) // 8, first.onset_ms, pause // 8 + second.end_ms)
    run = await run_call([CallerTurn(both)], hangup_wait_s=6.0)
    result = run.result

    # Each sentence was its own turn; the model was asked twice, the first time in vain.
    assert transcriber.heard == [["need"], ["hours"]]
    chat = standin.recorded("chat")
    assert len(chat) == 2
    assert message_text(chat[1].body["messages"][-1]) == second.text
    assert message_text(chat[1].body["messages"][-2]) == first.text

    # Nothing of the cancelled reply was ever synthesised or sent: the greeting, then the
    # answer to the second sentence, nothing else, and nothing to clear.
    spoken = [r.body["input"] for r in standin.recorded("speech")]
    assert not [s for s in spoken if echo(first.text) in s]
    assert [s for s in spoken if echo(second.text) in s]
    assert len(result.replies) == 2 and result.clears == 0
    answer = short_responder(chat[1].body["messages"], []).text
    assert run.turns("agent")[-1].text == answer
    assert result.turns[0].reply_ms is not None
    assert [t.role for t in run.stored.turns] == ["agent", "caller", "caller", "agent"]
