"""The stand-in's wire format, checked raw (the provider tests check it through the SDK)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from loadtest.standins.openai_server import Latency, StandinOpenAI

AUTH = {"authorization": "Bearer sk-standin"}
TOOLS = [{"type": "function", "function": {"name": "end_call", "parameters": {}}}]


@pytest.fixture
async def http(standin: StandinOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=5) as client:
        yield client


def sse_payloads(body: str) -> list[str]:
    assert body.endswith("\n\n")
    events = body.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


async def test_chat_stream_is_server_sent_events_as_the_api_sends_them(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/chat/completions",
        headers=AUTH,
        json={
            "model": "gpt-4o",
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": TOOLS,
            "messages": [{"role": "user", "content": "goodbye"}],
        },
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    *streamed, finish, usage = chunks
    deltas = [c["choices"][0]["delta"] for c in streamed]
    assert "".join(d.get("content") or "" for d in deltas) == "Thanks for calling. Goodbye!"
    fragments = [f for d in deltas for f in d.get("tool_calls", [])]
    assert fragments[0]["id"].startswith("call_") and fragments[0]["type"] == "function"
    assert fragments[0]["function"] == {"name": "end_call", "arguments": ""}
    assert len(fragments) > 3 and all(f["index"] == 0 for f in fragments)
    assert all("id" not in f for f in fragments[1:])
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {"reason": "caller said goodbye"}
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["choices"][0]["finish_reason"] is None for c in streamed)
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0


async def test_chat_without_stream_returns_one_completion(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/chat/completions",
        headers=AUTH,
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi there"}]},
    )

    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("I heard you say hi there.")
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_missing_or_wrong_key_gets_openai_style_401(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"authorization": "Bearer sk-nope"}):
        response = await http.post("/audio/speech", headers=headers, json={})

        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/audio/speech", {"json": {"model": "tts-1", "input": "Hi", "voice": "alloy"}}),
        (
            "/audio/speech",
            {"json": {"model": "tts-1", "input": "Hi", "voice": "alloy", "response_format": "mp3"}},
        ),
        ("/audio/speech", {"json": {"model": "tts-1", "voice": "alloy", "response_format": "pcm"}}),
        ("/audio/transcriptions", {"data": {"model": "whisper-1"}}),
        ("/audio/transcriptions", {"files": {"file": ("a.wav", b"RIFF")}}),
        ("/chat/completions", {"json": {"model": "gpt-4o", "messages": []}}),
        ("/chat/completions", {"content": b"{not json"}),
    ],
    ids=[
        "speech-default-mp3",
        "speech-mp3",
        "speech-no-input",
        "stt-no-file",
        "stt-no-model",
        "chat-no-messages",
        "chat-bad-json",
    ],
)
async def test_malformed_requests_get_400(
    http: httpx.AsyncClient, path: str, kwargs: dict[str, object]
) -> None:
    response = await http.post(path, headers=AUTH, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == 400
    assert response.json()["error"]["message"]


async def test_transcriber_sees_the_upload_and_text_format_is_plain(
    standin: StandinOpenAI, http: httpx.AsyncClient
) -> None:
    heard: list[bytes] = []
    standin.transcriber = lambda audio: heard.append(audio) or "scripted words"

    response = await http.post(
        "/audio/transcriptions",
        headers=AUTH,
        data={"model": "whisper-1", "response_format": "text"},
        files={"file": ("turn.wav", b"RIFF....WAVE", "audio/wav")},
    )

    assert response.text == "scripted words\n"
    assert heard == [b"RIFF....WAVE"]


async def test_failures_apply_the_given_number_of_times(
    standin: StandinOpenAI, http: httpx.AsyncClient
) -> None:
    standin.fail("chat", status=503, times=1)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    first = await http.post("/chat/completions", headers=AUTH, json=body)
    second = await http.post("/chat/completions", headers=AUTH, json=body)

    assert (first.status_code, second.status_code) == (503, 200)
    assert first.json()["error"]["type"] == "server_error"
    assert standin.served["chat"] == 2
    with pytest.raises(ValueError, match="endpoint"):
        standin.fail("embeddings")


async def test_stop_ends_a_hanging_request_promptly() -> None:
    server = StandinOpenAI(Latency.none())
    base_url = await server.start()
    server.fail("speech", status=None, hang_s=60)
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        request = asyncio.ensure_future(
            http.post(
                "/audio/speech",
                headers=AUTH,
                json={"model": "tts-1", "input": "Hi", "voice": "alloy", "response_format": "pcm"},
            )
        )
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await server.stop()
        assert time.perf_counter() - started < 1.0
        # The hang ended with the server: the request was answered, not left dangling.
        response = await asyncio.wait_for(request, 1)
        assert response.status_code == 200


async def test_latencies_are_applied() -> None:
    latency = Latency(
        stt_ms=0,
        llm_first_token_ms=150,
        llm_token_ms=20,
        tts_first_byte_ms=100,
        tts_realtime_factor=math.inf,
    )
    async with (
        StandinOpenAI(latency) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=5) as http,
    ):
        started = time.perf_counter()
        async with http.stream(
            "POST",
            "/chat/completions",
            headers=AUTH,
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a"}]},
        ) as response:
            lines = [line async for line in response.aiter_lines() if line]
        elapsed = time.perf_counter() - started
        tokens = len(lines) - 3  # role chunk, finish chunk, [DONE]
        assert elapsed >= 0.15 + 0.02 * tokens * 0.9

        started = time.perf_counter()
        async with http.stream(
            "POST",
            "/audio/speech",
            headers=AUTH,
            json={"model": "tts-1", "input": "Hi", "voice": "alloy", "response_format": "pcm"},
        ) as response:
            await anext(response.aiter_raw())
            assert time.perf_counter() - started >= 0.1
