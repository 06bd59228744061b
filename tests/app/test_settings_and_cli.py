"""A bad setting stops the server before it starts, naming the setting; the transcript
command prints stored calls in the contract's JSON shape."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from loadtest.fixtures import load_script
from tests.app.conftest import Served
from tests.app.twilio_side import SILENCE_FRAME, issue_token, new_call_sid, open_stream, until
from voice_agent.settings import SettingsError, load_settings

CLI = Path(sys.executable).with_name("voice-agent")


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command in a scrubbed environment: only what the test sets (and PATH)."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "HF_HUB_OFFLINE": "1",
    } | env
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"public_base_url": "ftp://x"}, "PUBLIC_BASE_URL"),
        ({"public_base_url": "agent.example.com"}, "PUBLIC_BASE_URL"),
        ({"database_url": "mysql://db/x"}, "DATABASE_URL"),
        ({"redis_url": "http://cache:6379"}, "REDIS_URL"),
        ({"endpointing_silence_ms": 10}, "ENDPOINTING_SILENCE_MS"),
        ({"agent_pipeline": "cascade"}, "OPENAI_API_KEY"),
    ],
)
def test_bad_setting_is_named(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(**overrides)
    message = str(error.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENDPOINTING_SILENCE_MS", "abc"),
        ("PUBLIC_BASE_URL", "ftp://x"),
        ("TWILIO_VALIDATE", "maybe"),
    ],
)
def test_serve_refuses_a_malformed_setting(variable: str, value: str, tmp_path: Path) -> None:
    done = run_cli(["serve", "--port", "1"], tmp_path, **{variable: value})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr
    assert done.stdout == ""


def test_transcript_of_an_unknown_call_fails(tmp_path: Path) -> None:
    done = run_cli(
        ["transcript", "NOPE"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/voice_agent.db"
    )
    assert done.returncode == 1
    assert "NOPE" in done.stderr and done.stdout == ""


async def test_transcript_json_of_a_real_call(served: Served, tmp_path: Path) -> None:
    call_sid = new_call_sid()
    stream = await open_stream(served.settings, call_sid)
    await stream.start(await issue_token(served.settings, call_sid))
    await until(
        lambda: served.metric("voice_agent_turns_total", role="agent") == 1,
        what="the greeting, heard",
    )
    await stream.send_audio(load_script()[0].audio + SILENCE_FRAME * 40)
    await until(
        lambda: served.metric("voice_agent_turns_total", role="agent") == 2, what="the reply"
    )
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    assert await served.runtime.writes.flush(5.0)

    done = run_cli(
        ["transcript", call_sid, "--json"], tmp_path, DATABASE_URL=served.settings.database_url
    )
    assert done.returncode == 0, done.stderr
    transcript = orjson.loads(done.stdout)
    assert transcript["call_sid"] == call_sid
    assert [t["role"] for t in transcript["turns"]] == ["agent", "caller", "agent"]
    for turn in transcript["turns"]:
        assert {"role", "text", "started_at", "latency_ms"} <= turn.keys()
        assert isinstance(turn["text"], str) and turn["text"]
        datetime.fromisoformat(turn["started_at"])
    greeting, caller, reply = transcript["turns"]
    assert greeting["latency_ms"] is None and caller["latency_ms"] is None
    assert isinstance(reply["latency_ms"], float) and reply["latency_ms"] > 0

    text = run_cli(["transcript", call_sid], tmp_path, DATABASE_URL=served.settings.database_url)
    assert text.returncode == 0 and call_sid in text.stdout and "Caller: hello" in text.stdout
