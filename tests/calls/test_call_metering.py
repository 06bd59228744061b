"""Metering measured where it happens, on a whole cascade call through the real SDK and
the stand-in: STT seconds are the audio uploaded, LLM tokens the usage chunks the server
streamed, TTS characters the text sent to be spoken; with metering off, nothing is
stored. The post-call record carries the usage and its cost at the default prices."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import pytest

from loadtest.standins.openai_server import StandinOpenAI
from prompts.loader import load_agents
from tests.calls.cascade_support import RunCall, short_responder
from voice_agent.billing.service import Billing
from voice_agent.conversation.session import RECOVERY_PHRASES
from voice_agent.demo import demo_turns
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.metering import UsageRepository


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate()


async def _rows(settings: Settings, call_sid: str) -> list[tuple[str, str, float]]:
    db = await Database.connect(settings.database_url)
    try:
        rows = await UsageRepository(db).rows_for_call(call_sid)
    finally:
        await db.dispose()
    return [(r.meter, r.model, r.quantity) for r in rows]


async def test_a_cascade_call_is_metered_as_the_providers_saw_it(
    standin: StandinOpenAI, run_call: RunCall, cascade_settings: Callable[..., Settings]
) -> None:
    standin.responder = short_responder
    settings = cascade_settings()
    run = await run_call(demo_turns(), settings=settings)
    rows = await _rows(settings, run.result.call_sid)

    def total(meter: str) -> float:
        return sum(q for m, _, q in rows if m == meter)

    uploads = [_wav_seconds(r.file or b"") for r in standin.recorded("transcriptions")]
    assert uploads and total("stt_seconds") == pytest.approx(sum(uploads), abs=1e-3 * len(uploads))
    usage = list(standin.usage_sent)
    assert usage
    assert total("llm_input_tokens") == sum(u["prompt_tokens"] for u in usage)
    assert total("llm_output_tokens") == sum(u["completion_tokens"] for u in usage)
    # The greeting is the phrase cache's, made at start-up for every call alike, and so
    # are the recovery phrases (#16).
    greetings = {a.render_speech(a.greeting) for a in load_agents().values()}
    greetings |= set(RECOVERY_PHRASES)
    spoken = [r.body["input"] for r in standin.recorded("speech")]
    assert total("tts_characters") == sum(len(t) for t in spoken if t not in greetings) > 0
    models = {(m, model) for m, model, _ in rows}
    assert ("stt_seconds", "whisper-1") in models and ("tts_characters", "tts-1") in models
    assert ("llm_input_tokens", "gpt-4o") in models

    db = await Database.connect(settings.database_url)
    try:
        record = await Billing(db, settings).costs.call_record(run.result.call_sid, "default")
    finally:
        await db.dispose()
    cost = record["cost_usd"]
    assert cost["stt"] == pytest.approx(total("stt_seconds") / 60 * 0.006, abs=1e-6)
    assert cost["llm"] == pytest.approx(
        total("llm_input_tokens") / 1000 * 0.0025 + total("llm_output_tokens") / 1000 * 0.01,
        abs=1e-6,
    )
    assert cost["tts"] == pytest.approx(total("tts_characters") / 1000 * 0.015, abs=1e-6)
    assert cost["telephony"] == 0  # no status callback yet: Twilio has not counted the call
    assert cost["total"] == pytest.approx(cost["stt"] + cost["llm"] + cost["tts"], abs=1e-6)
    assert record["usage"]["llm_output_tokens"] == total("llm_output_tokens")


async def test_metering_off_stores_no_usage(
    standin: StandinOpenAI, run_call: RunCall, cascade_settings: Callable[..., Settings]
) -> None:
    standin.responder = short_responder
    settings = cascade_settings(metering_enabled=False)
    run = await run_call(demo_turns()[:2], settings=settings)
    assert run.turns("caller")
    assert await _rows(settings, run.result.call_sid) == []
