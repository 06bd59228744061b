"""A real call, recorded by the server, is reviewed on the dashboard by its tenant's staff,
and by nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import load_script
from tests.conftest import TWILIO_TOKEN
from tests.dashboard.conftest import login
from tests.dashboard.seed import add_tenant, add_user
from voice_agent.demo import running_server
from voice_agent.settings import Settings


async def test_the_recording_plays_for_its_tenant_and_is_hidden_from_others(
    cascade_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = cascade_settings(recordings_dir=str(tmp_path / "rec"))
    async with running_server(settings) as runtime:
        await add_tenant(runtime.database, "globex")
        await add_user(runtime.database, "desk@default.test", "staff", "default")
        await add_user(runtime.database, "desk@globex.test", "staff", "globex")
        result = await place_call(
            settings.public_base_url,
            [CallerTurn(load_script()[1])],
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=1.0,
        )
        assert result.error is None
        assert await runtime.writes.flush(5.0)
        assert runtime.recordings is not None
        await runtime.recordings.drain()
        facts = await runtime.calls.call_facts(result.call_sid)
        assert facts is not None and facts["recording_path"]
        recording = await asyncio.to_thread(Path(facts["recording_path"]).read_bytes)
        call_page = f"/calls/{result.call_sid}"

        async with httpx.AsyncClient(base_url=settings.public_base_url) as staff:
            assert (await login(staff, "desk@default.test")).status_code == 303
            page = await staff.get(call_page)
            assert page.status_code == 200
            assert f"{call_page}/recording" in page.text
            audio = await staff.get(f"{call_page}/recording")
            assert audio.status_code == 200 and audio.content == recording
            assert "flac" in audio.headers["content-type"]
            ranged = await staff.get(f"{call_page}/recording", headers={"Range": "bytes=0-99"})
            assert ranged.status_code == 206 and ranged.content == recording[:100]
            exported = (await staff.get(f"{call_page}/transcript.json")).json()
            assert exported["call_sid"] == result.call_sid
            assert [t["role"] for t in exported["turns"]][:2] == ["agent", "caller"]

        async with httpx.AsyncClient(base_url=settings.public_base_url) as outsider:
            assert (await login(outsider, "desk@globex.test")).status_code == 303
            assert (await outsider.get(call_page)).status_code == 404
            assert (await outsider.get(f"{call_page}/recording")).status_code == 404
