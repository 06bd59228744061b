"""Every call recorded by the server: caller and agent as two channels of one FLAC file that
starts at calls.started_at and lasts as long as the call; deleted after the tenant's
retention days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import load_script
from media.recording import CallRecording
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.recordings import write_flac
from voice_agent.settings import Settings
from voice_agent.storage.records import CallStarted


async def test_a_call_is_recorded_in_two_channels(
    cascade_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = cascade_settings(recordings_dir=str(tmp_path / "rec"))
    utterance = load_script()[1]
    async with running_server(settings) as runtime:
        result = await place_call(
            settings.public_base_url,
            [CallerTurn(utterance)],
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=1.0,
        )
        assert result.error is None
        assert await runtime.writes.flush(5.0)
        assert runtime.recordings is not None
        await runtime.recordings.drain()
        facts = await runtime.calls.call_facts(result.call_sid)
        stored = await runtime.calls.get_call(result.call_sid)

    assert facts is not None and stored is not None and stored.ended_at is not None
    path = Path(facts["recording_path"])
    assert path.parent.parent.parent == tmp_path / "rec"
    assert path.parent.parent.name == "default" and path.name == f"{result.call_sid}.flac"
    audio, rate = soundfile.read(path, dtype="int16")
    info = soundfile.info(path)
    assert info.format == "FLAC" and rate == 8000 and audio.shape[1] == 2
    # t=0 is calls.started_at and the file lasts until calls.ended_at.
    call_seconds = (stored.ended_at - stored.started_at).total_seconds()
    assert abs(len(audio) - round(call_seconds * 8000)) <= 1
    caller, agent = audio[:, 0], audio[:, 1]
    # The greeting plays from the start, on the agent's channel only.
    assert np.abs(agent[:4000].astype(np.int32)).max() > 1000
    greeting_end = len(result.replies[0])
    # The caller spoke after the greeting: their voice is on their channel, after it.
    voiced = np.flatnonzero(np.abs(caller.astype(np.int32)) > 1000)
    assert len(voiced) > 0 and voiced[0] >= greeting_end - 800
    heard = len(result.agent_audio)
    assert np.count_nonzero(np.abs(agent.astype(np.int32)) > 100) <= heard


async def test_recording_can_be_turned_off(
    cascade_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = cascade_settings(recordings_enabled=False, recordings_dir=str(tmp_path / "rec"))
    async with running_server(settings) as runtime:
        result = await place_call(
            settings.public_base_url, [], auth_token=TWILIO_TOKEN, hangup_wait_s=0.5
        )
        assert await runtime.writes.flush(5.0)
        facts = await runtime.calls.call_facts(result.call_sid)
    assert facts is not None and facts["recording_path"] is None
    assert not (tmp_path / "rec").exists()


async def test_retention_deletes_old_recordings_per_tenant(
    cascade_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = cascade_settings(recordings_dir=str(tmp_path / "rec"))
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    async with running_server(settings) as runtime:
        store = runtime.recordings
        assert store is not None
        default = await runtime.tenants.get("default")
        default.recording_retention_days = 30
        await runtime.tenants.save(default)
        ages = {"CAold": 31, "CAnew": 29}
        for sid, days in ages.items():
            started = now - timedelta(days=days)
            await runtime.calls.write(
                [CallStarted(sid, "default", "inbound", "+1", "+2", "receptionist", "x", started)]
            )
            recording = CallRecording()
            recording.caller(b"\x00" * 160)
            path = store.path_for("default", sid, started)
            write_flac(path, recording)
            assert await runtime.calls.set_call_facts(sid, recording_path=str(path))

        assert await store.sweep(now) == 1
        old = await runtime.calls.call_facts("CAold")
        new = await runtime.calls.call_facts("CAnew")
    assert old is not None and old["recording_path"] is None
    assert not _exists(store.path_for("default", "CAold", now - timedelta(days=31)))
    assert new is not None and _exists(Path(new["recording_path"]))


def _exists(path: Path) -> bool:
    return path.exists()


async def test_an_unwritable_directory_loses_the_recording_not_the_call(
    cascade_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    settings = cascade_settings(recordings_dir=str(blocker))
    async with running_server(settings) as runtime:
        result = await place_call(
            settings.public_base_url, [], auth_token=TWILIO_TOKEN, hangup_wait_s=0.5
        )
        assert await runtime.writes.flush(5.0)
        assert runtime.recordings is not None
        await runtime.recordings.drain()
        stored = await runtime.calls.get_call(result.call_sid)
        facts = await runtime.calls.call_facts(result.call_sid)
    assert result.error is None and stored is not None and stored.status == "completed"
    assert facts is not None and facts["recording_path"] is None
