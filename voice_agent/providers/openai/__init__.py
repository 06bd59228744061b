"""The OpenAI cascade: Whisper transcription, streamed chat with tools, PCM speech."""

from voice_agent.providers.openai.client import make_client
from voice_agent.providers.openai.dialogue import OpenAIDialogue, OpenAIDialogueEngine
from voice_agent.providers.openai.stt import OpenAISpeechToText
from voice_agent.providers.openai.tts import OpenAITextToSpeech

__all__ = [
    "OpenAIDialogue",
    "OpenAIDialogueEngine",
    "OpenAISpeechToText",
    "OpenAITextToSpeech",
    "make_client",
]
