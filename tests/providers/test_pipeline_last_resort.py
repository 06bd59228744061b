"""The cascade pipeline's stages with the offline last resort (FALLBACK_OFFLINE_SPEECH):
Whisper after the OpenAI-compatible STT providers, Piper (heard at their rate) after the
TTS ones, and only for speech; with the setting off, none."""

from __future__ import annotations

from loadtest.standins.openai_server import StandinOpenAI
from voice_agent.pipelines import build_pipeline
from voice_agent.providers.offline.whisper import WhisperSpeechToText
from voice_agent.providers.openai.dialogue import OpenAIDialogueEngine
from voice_agent.providers.openai.stt import OpenAISpeechToText
from voice_agent.providers.openai.tts import OpenAITextToSpeech
from voice_agent.providers.resampled import ResampledTextToSpeech
from voice_agent.settings import Settings


def _settings(standin: StandinOpenAI, **overrides: object) -> Settings:
    return Settings(
        agent_pipeline="cascade",
        openai_api_key=standin.api_key,
        openai_base_url=standin.base_url,
        fallback_openai_base_url=standin.base_url,
        **overrides,  # type: ignore[arg-type]
    )


async def test_offline_speech_stands_last_in_the_speech_stages(standin: StandinOpenAI) -> None:
    pipeline = await build_pipeline(_settings(standin))
    try:
        stt = pipeline.stt.providers  # type: ignore[attr-defined]
        tts = pipeline.tts.providers  # type: ignore[attr-defined]
        llm = pipeline.dialogue.providers  # type: ignore[attr-defined]
        assert [type(p) for p in stt] == [
            OpenAISpeechToText,
            OpenAISpeechToText,
            WhisperSpeechToText,
        ]
        assert [type(p) for p in tts] == [
            OpenAITextToSpeech,
            OpenAITextToSpeech,
            ResampledTextToSpeech,
        ]
        assert [type(p) for p in llm] == [OpenAIDialogueEngine, OpenAIDialogueEngine]
        assert tts[-1].sample_rate == tts[0].sample_rate == pipeline.tts.sample_rate
        # Metered as the primary's: the stage has one model name.
        assert pipeline.tts.usage_model == tts[0].usage_model  # type: ignore[attr-defined]
    finally:
        await pipeline.aclose()


async def test_without_the_setting_no_offline_provider(standin: StandinOpenAI) -> None:
    pipeline = await build_pipeline(_settings(standin, fallback_offline_speech=False))
    try:
        for stage in (pipeline.stt, pipeline.tts):
            assert len(stage.providers) == 2  # type: ignore[attr-defined]
    finally:
        await pipeline.aclose()
