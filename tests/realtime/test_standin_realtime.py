"""The Realtime stand-in on its own, over a bare websocket client: the beta interface's
event names when the client asks for them, its server VAD, and the provider's parsing of
both generations' names."""

from __future__ import annotations

import asyncio
import base64

import orjson
import websockets

from loadtest.fixtures import Utterance
from loadtest.standins.realtime_server import StandinRealtime
from voice_agent.providers.openai.realtime import parse_event
from voice_agent.providers.speech_to_speech import AudioDelta, SpeechStarted, TranscriptDelta


async def test_beta_clients_get_beta_event_names(
    realtime: StandinRealtime, utterances: dict[str, Utterance]
) -> None:
    url = realtime.url + "/realtime?model=gpt-4o-realtime-preview"
    headers = {"Authorization": f"Bearer {realtime.api_key}", "OpenAI-Beta": "realtime=v1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        created = orjson.loads(await ws.recv())
        assert created["type"] == "session.created"
        update = {"input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw"}
        update["turn_detection"] = {"type": "server_vad", "silence_duration_ms": 300}
        await ws.send(orjson.dumps({"type": "session.update", "session": update}).decode())
        audio = utterances["hours"].audio + b"\xff" * 8000
        for start in range(0, len(audio), 1600):
            chunk = base64.b64encode(audio[start : start + 1600]).decode()
            await ws.send(orjson.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        seen: list[str] = []
        async with asyncio.timeout(10):
            while "response.done" not in seen:
                seen.append(orjson.loads(await ws.recv())["type"])
    assert "response.audio.delta" in seen and "response.output_audio.delta" not in seen
    assert "response.audio_transcript.done" in seen
    assert "conversation.item.created" in seen
    assert seen.index("input_audio_buffer.speech_started") < seen.index(
        "input_audio_buffer.speech_stopped"
    )
    (session,) = realtime.sessions
    assert session.beta and session.model == "gpt-4o-realtime-preview"
    # The VAD found the speech where the fixture has it (to a 20 ms frame and its window).
    (start_ms,) = session.speech_started
    assert abs(start_ms - utterances["hours"].onset_ms) <= 60


def test_both_generations_parse_alike() -> None:
    delta = base64.b64encode(b"\xff" * 160).decode()
    for name in ("response.output_audio.delta", "response.audio.delta"):
        event = parse_event({"type": name, "response_id": "r", "item_id": "i", "delta": delta})
        assert event == AudioDelta("r", "i", b"\xff" * 160)
    for name in ("response.output_audio_transcript.delta", "response.audio_transcript.delta"):
        assert parse_event({"type": name, "item_id": "i", "delta": "Hi"}) == TranscriptDelta(
            "i", "Hi"
        )
    started = {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1200}
    assert parse_event(started) == SpeechStarted(1200)
    assert parse_event({"type": "rate_limits.updated"}) is None
