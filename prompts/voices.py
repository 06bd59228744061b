"""The speech settings an agent may choose: a TTS voice per pipeline, and a language.

Kept with the definitions (not in the providers) so a tenant's choice is checked when it
is saved, not when the first sentence of a call fails; the providers take their voice
lists from here, so the two cannot drift apart.
"""

from __future__ import annotations

import re

#: OpenAI's text-to-speech voices (the cascade pipeline's TTS, and the cached phrases of
#: the realtime pipeline).
OPENAI_TTS_VOICES: frozenset[str] = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)
#: The voices the Realtime (speech-to-speech) models speak with.
REALTIME_VOICES: frozenset[str] = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)
#: Pipeline name (settings.pipeline) -> the voices it can speak; None: any name (the
#: offline pipeline has one bundled Piper voice and ignores the name).
PIPELINE_VOICES: dict[str, frozenset[str] | None] = {
    "offline": None,
    "cascade": OPENAI_TTS_VOICES,
    "realtime": REALTIME_VOICES,
}
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: ISO 639-1 codes (and Whisper's few longer ones) the speech-to-text models accept.
LANGUAGES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian",
    "bg": "Bulgarian", "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan", "cs": "Czech",
    "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "kk": "Kazakh", "kn": "Kannada", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "mi": "Maori", "mk": "Macedonian", "mr": "Marathi", "ms": "Malay",
    "ne": "Nepali", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
DEFAULT_LANGUAGE = "en"


def voice_problem(pipeline: str, name: str) -> str | None:
    """Why `name` cannot be `pipeline`'s voice (None: it can)."""
    if pipeline not in PIPELINE_VOICES:
        return "unknown pipeline (allowed: " + ", ".join(sorted(PIPELINE_VOICES)) + ")"
    if not _VOICE_NAME.match(name):
        return f"{name!r} is not a voice name (letters, digits, '_', '.', '-')"
    allowed = PIPELINE_VOICES[pipeline]
    if allowed is not None and name not in allowed:
        return f"{name!r} is not a {pipeline} voice (allowed: " + ", ".join(sorted(allowed)) + ")"
    return None


def language_problem(code: str) -> str | None:
    if code not in LANGUAGES:
        return f"{code!r} is not a supported language code (for example 'en', 'es', 'fr')"
    return None


def language_instruction(code: str) -> str:
    """What the model is told so it answers in the agent's language ('' for English,
    the language every shipped prompt is written in)."""
    if code == DEFAULT_LANGUAGE:
        return ""
    name = LANGUAGES.get(code, code)
    return (
        f"\n\nThe caller speaks {name}. Always reply in {name}, whatever language the"
        " instructions above are written in."
    )
