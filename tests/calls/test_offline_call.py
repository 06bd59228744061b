"""A whole phone call over a real websocket against the running app, offline pipeline:
bundled Whisper hears the committed caller fixtures, the playbook answers, Piper speaks."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from loadtest.caller import place_call
from media import mulaw
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import DEMO_SCRIPT, demo_turns, running_server
from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings
from voice_agent.storage.metering import UsageRepository


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("$5,000", "five thousand dollars"))


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, words(a), words(b)).ratio()


async def test_whole_offline_call(
    offline_pipeline: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    async with running_server(settings, pipeline=offline_pipeline) as runtime:
        result = await place_call(settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN)
        assert await runtime.writes.flush(5.0)
        stored = await runtime.calls.get_call(result.call_sid)
        usage = await UsageRepository(runtime.database).rows_for_call(result.call_sid)
        assert runtime.billing is not None
        billed = await runtime.billing.costs.call_record(result.call_sid, "default")

    assert result.error is None
    assert stored is not None

    # The greeting is heard, and it is the receptionist's greeting.
    assert result.greeting_ms is not None
    greeting = await offline_pipeline.stt.transcribe(mulaw.decode(bytes(result.replies[0])), 8000)
    assert similarity(greeting.text, stored.turns[0].text) > 0.6, greeting.text

    # Every caller turn is understood close to what the fixture says, in order.
    caller_turns = [t for t in stored.turns if t.role == "caller"]
    fixtures = [u.utterance.text for u in demo_turns()]
    assert len(caller_turns) == len(fixtures), [t.text for t in caller_turns]
    for heard, said in zip(caller_turns, fixtures, strict=True):
        assert similarity(heard.text, said) >= 0.6, (heard.text, said)

    # Each turn the caller waited for got a spoken reply.
    for turn in result.turns:
        if not turn.barge_in:
            assert turn.reply_ms is not None, turn.text

    # The barge-in cleared the line, and nothing of the interrupted reply came after it.
    barge = next(t for t in result.turns if t.barge_in)
    assert result.clears >= 1
    assert barge.clear_ms is not None
    clear_at = result.clear_times[0]
    assert not [t for t in result.media_times if clear_at < t < barge.speech_end_at]
    interrupted = [t for t in stored.turns if t.interrupted]
    assert len(interrupted) == 1 and interrupted[0].role == "agent"
    # (A recovery phrase, an "event" row, may come between when a reply runs late.)
    spoken = [t for t in stored.turns if t.role != "event"]
    cut_index = spoken.index(interrupted[0])
    assert spoken[cut_index + 1].role == "caller"

    # The goodbye ends the call from the agent's side, after it was heard in full.
    assert result.ended_by_server
    assert result.unplayed_at_close == 0
    assert stored.end_reason == "agent-hangup"
    assert stored.status == "completed"

    # Stored in order: greeting first, goodbye last, latency on answered turns.
    assert [t.seq for t in stored.turns] == sorted(t.seq for t in stored.turns)
    assert stored.turns[0].role == "agent" and stored.turns[-1].role == "agent"
    assert "bye" in stored.turns[-1].text.lower() or "great day" in stored.turns[-1].text.lower()
    answered = [t for t in stored.turns if t.role == "agent" and t.total_ms is not None]
    assert len(answered) >= len(DEMO_SCRIPT) - 2
    for turn in answered:
        assert turn.stt_ms is not None and turn.stt_ms > 0
        assert turn.server_ms is not None and turn.server_ms >= 0
        assert turn.total_ms >= turn.endpointing_ms

    # The offline pipeline is metered like any other (its audio seconds and characters are
    # counted) and priced at nothing; the playbook reports no tokens.
    meters = {(r.meter, r.model) for r in usage}
    assert meters == {
        ("stt_seconds", "offline:whisper-tiny.en"),
        ("tts_characters", "offline:piper"),
    }
    heard_s = sum(r.quantity for r in usage if r.meter == "stt_seconds")
    # What the VAD cut out as speech: part of the caller's audio, never more than all of it.
    spoken_s = sum(len(u.utterance.audio) for u in demo_turns()) / 8000
    assert 0.5 * spoken_s < heard_s <= spoken_s + 1.0, (heard_s, spoken_s)
    assert billed["usage"]["tts_characters"] > 0
    assert billed["cost_usd"] == {"telephony": 0, "stt": 0, "llm": 0, "tts": 0, "total": 0}
