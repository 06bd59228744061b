"""The whole demo call on the cascade pipeline: the OpenAI SDK against the loopback
stand-in, over the real webhook and media websocket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loadtest.standins.openai_server import StandinOpenAI
from voice_agent.demo import demo_turns


async def test_whole_demo_call_on_cascade(
    standin: StandinOpenAI, transcriber: Any, run_call: Callable[..., Any]
) -> None:
    turns = demo_turns()
    t0 = time.perf_counter()
    run = await run_call(turns)
    print("took", time.perf_counter() - t0)
    result, stored = run.result, run.stored
    print(transcriber.heard)
    for t in stored.turns:
        print(t)
    print(result.turns, result.clears, result.unplayed_at_close, result.ended_by_server)
