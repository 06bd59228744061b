"""Call recordings on disk: written once the call ends (in a worker thread), found through
calls.recording_path, deleted after the tenant's retention days.

Layout: ``RECORDINGS_DIR/<tenant>/<YYYY-MM-DD>/<call_sid>.flac`` (default RECORDINGS_DIR is
DATA_DIR/recordings); two channels, caller then agent, 8 kHz, 16-bit FLAC. The first sample
is calls.started_at, so turn times index straight into the file.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import soundfile

from media.recording import RATE, CallRecording
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.tenants import TenantRepository
from voice_agent.storage.write_queue import WriteQueue

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_ROW_WAIT_S = 10.0


def recordings_dir(recordings_dir: str | None, data_dir: str) -> Path:
    """Absolute, so calls.recording_path stays valid whatever the reader's directory."""
    chosen = Path(recordings_dir) if recordings_dir else Path(data_dir) / "recordings"
    return chosen.resolve()


def write_flac(path: Path, recording: CallRecording, samples: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    soundfile.write(partial, recording.pcm(samples), RATE, format="FLAC", subtype="PCM_16")
    partial.replace(path)  # a reader never sees half a file


class RecordingStore:
    def __init__(
        self,
        directory: Path,
        calls: CallRepository,
        tenants: TenantRepository,
        writes: WriteQueue,
    ) -> None:
        self.directory = directory
        self._calls = calls
        self._tenants = tenants
        self._writes = writes
        self._saving: set[asyncio.Task[None]] = set()

    def path_for(self, tenant: str, call_sid: str, started_at: datetime) -> Path:
        day = started_at.astimezone(UTC).strftime("%Y-%m-%d")
        return (
            self.directory
            / (_SAFE.sub("_", tenant) or "_")
            / day
            / f"{_SAFE.sub('_', call_sid)}.flac"
        )

    def save_later(
        self,
        recording: CallRecording,
        *,
        tenant: str,
        call_sid: str,
        started_at: datetime,
        samples: int | None = None,
    ) -> None:
        """Write the file and note its path on the call, off the audio path."""
        task = asyncio.create_task(self.save(recording, tenant, call_sid, started_at, samples))
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def save(
        self,
        recording: CallRecording,
        tenant: str,
        call_sid: str,
        started_at: datetime,
        samples: int | None = None,
    ) -> Path | None:
        path = self.path_for(tenant, call_sid, started_at)
        try:
            await asyncio.to_thread(write_flac, path, recording, samples)
        except Exception:
            log.exception("call %s: recording could not be written to %s", call_sid, path)
            return None
        # The call's row is written by the write queue; it may still be on its way.
        if not await self._calls.set_call_facts(call_sid, recording_path=str(path)):
            await self._writes.flush(_ROW_WAIT_S)
            if not await self._calls.set_call_facts(call_sid, recording_path=str(path)):
                log.error(
                    "call %s: recording saved at %s but the call row is missing", call_sid, path
                )
        return path

    async def drain(self) -> None:
        """Wait for recordings still being written (shutdown)."""
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)

    async def sweep(self, now: datetime) -> int:
        """Delete recordings older than each tenant's retention; returns how many."""
        removed = 0
        for tenant in await self._tenants.all():
            before = now - timedelta(days=tenant.recording_retention_days)
            for call_sid, path in await self._calls.recordings_before(tenant.slug, before):
                try:
                    await asyncio.to_thread(Path(path).unlink, True)
                except OSError as exc:
                    log.error("call %s: cannot delete recording %s: %s", call_sid, path, exc)
                    continue
                await self._calls.set_call_facts(call_sid, recording_path=None)
                removed += 1
        if removed:
            log.info("retention: %d recordings deleted", removed)
        return removed

    async def sweep_forever(self, now: Callable[[], datetime], every_s: float = 3600.0) -> None:
        while True:
            try:
                await self.sweep(now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(every_s)
