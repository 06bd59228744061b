"""LOG_FORMAT=json on a real server process (two workers, so the set-up reaches the workers
uvicorn spawns): every line is one JSON object, and every line logged for a call names its
call_sid and tenant."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from loadtest.fixtures import Utterance
from tests.deploy.processes import ServerProcess, wait_for
from tests.deploy.test_drain import start_call

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_json_lines_carry_the_call(
    servers: Callable[..., ServerProcess], utterances: dict[str, Utterance]
) -> None:
    server = servers(
        workers=2, log_format="json", log_level="info", redis_url="redis://127.0.0.1:6379/0"
    )
    await server.ready()
    line = await start_call(server, server.env["PUBLIC_BASE_URL"])
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    await line.turn(utterances["need"].audio)
    await line.hang_up()

    def ended() -> bool:
        return "call ended" in server.log_path.read_text()

    await wait_for(ended, 10, "the call's end in the log")
    entries = []
    for text in server.log_path.read_text().splitlines():
        entry = orjson.loads(text)  # every line is JSON (uvicorn's own included)
        assert {"ts", "level", "logger", "msg"} <= set(entry), text
        entries.append(entry)
    of_call = [e for e in entries if e.get("call_sid") == line.call_sid]
    messages = [e["msg"] for e in of_call]
    assert any(m.startswith("call started") for m in messages), messages
    assert any(m.startswith("call ended") for m in messages), messages
    # The provider requests made by the session's tasks inherit the call.
    assert any(e["logger"] == "httpx2" for e in of_call), of_call
    assert {e["tenant"] for e in of_call} == {"default"}
    # No line of the call's own went out without it.
    uncalled = [
        e for e in entries if e["logger"].startswith("voice_agent.call_tap") and "call_sid" not in e
    ]
    assert not uncalled, uncalled
