"""Early model start (#18) in whole calls over the real media websocket on the cascade
pipeline: at a pause whose speculative transcript reads as finished, the model is asked at
once; its answer waits for the turn to end there, and is dropped if the caller goes on.

The gain is measured as the caller hears it: end of speech to the agent's first audio,
with the stand-in model taking 600 ms to its first token and the turn's wait 700 ms."""

from __future__ import annotations

from dataclasses import replace

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Latency, StandinOpenAI, message_text
from prompts import TurnTaking
from tests.calls.cascade_support import CallRun, FixtureTranscriber, call_runner, short_responder
from voice_agent.settings import Settings

FIRST_TOKEN_MS = 600.0
#: A finished turn waits 700 ms; its transcript is ready ~200 ms into the pause.
TAKING = TurnTaking(
    text_aware=True, speculation_ms=200, min_wait_ms=700, max_wait_ms=1500, silence_ms=1000
)


async def _call(settings: Settings, turns: list[CallerTurn], taking: TurnTaking) -> CallRun:
    return await call_runner(lambda: settings)(turns, hangup_wait_s=8.0, turn_taking=taking)


async def test_the_model_asked_at_the_pause_answers_sooner(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: type[Settings],
) -> None:
    standin.latency = replace(Latency.none(), llm_first_token_ms=FIRST_TOKEN_MS)
    standin.responder = short_responder
    turns = [CallerTurn(utterances["hours"])]
    reply_ms: dict[bool, float] = {}
    for early in (False, True):
        run = await _call(cascade_settings(), turns, replace(TAKING, early_llm=early))  # type: ignore[operator]
        assert run.result.turns[0].reply_ms is not None
        reply_ms[early] = run.result.turns[0].reply_ms
        agent = run.turns("agent")
        assert (
            agent[-1].text
            == short_responder(standin.recorded("chat")[-1].body["messages"], []).text
        )
    print(
        f"\nreply after speech end: early off {reply_ms[False]:.0f} ms, on {reply_ms[True]:.0f} ms"
    )
    # Asked ~200 ms into the pause instead of at its 700 ms end: ~500 ms sooner (the
    # caller's 20 ms grid and the transcript's own time take some of it).
    assert reply_ms[False] - reply_ms[True] >= 300
    assert len(standin.recorded("chat")) == 2  # one request per call either way


async def test_an_early_answer_is_dropped_when_the_caller_goes_on(
    standin: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    cascade_settings: type[Settings],
) -> None:
    standin.latency = replace(Latency.none(), llm_first_token_ms=FIRST_TOKEN_MS)
    standin.responder = short_responder
    first, second = utterances["hours"], utterances["need"]
    # A question, a 450 ms pause (past the speculation, short of the 700 ms wait), more.
    pause = (first.end_ms + 450 - second.onset_ms) * 8  # the second has its own lead-in
    pause -= pause % 160
    audio = first.audio[:pause] + second.audio
    both = Utterance("both", "", audio, len(audio) // 8, first.onset_ms, pause // 8 + second.end_ms)
    run = await _call(cascade_settings(), [CallerTurn(both)], TAKING)  # type: ignore[operator]

    chat = standin.recorded("chat")
    # Asked early for the question alone, then again for the whole turn.
    assert [message_text(r.body["messages"][-1]) for r in chat] == [
        first.text,
        f"{first.text} {second.text}",
    ]
    # Only the answer to the whole turn was said: nothing of the dropped one.
    spoken = " ".join(t.text for t in run.turns("agent")[1:])
    assert spoken == short_responder(chat[1].body["messages"], []).text
    assert [t.role for t in run.stored.turns] == ["agent", "caller", "agent"]
