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
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from media.recording import RATE, CallRecording, blocks_pcm, recycle
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.tenants import TenantRepository
from voice_agent.storage.write_queue import WriteQueue

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_ROW_WAIT_S = 10.0
#: libsndfile's fastest FLAC setting: on 8 kHz speech it encodes in two thirds of the default's
#: time (1.0 against 1.4 ms for 5 s of a call) and the files come out no larger.
_FLAC_LEVEL = 0.0


def recordings_dir(recordings_dir: str | None, data_dir: str) -> Path:
    """Absolute, so calls.recording_path stays valid whatever the reader's directory."""
    chosen = Path(recordings_dir) if recordings_dir else Path(data_dir) / "recordings"
    return chosen.resolve()


def write_flac(path: Path, recording: CallRecording, samples: int | None = None) -> None:
    """The whole recording in one go (what is left of it, if blocks were taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    soundfile.write(
        partial,
        recording.pcm(samples),
        RATE,
        format="FLAC",
        subtype="PCM_16",
        compression_level=_FLAC_LEVEL,
    )
    partial.replace(path)  # a reader never sees half a file


class RecordingFile:
    """One call's FLAC, appended block by block in worker threads while the call goes on,
    so a call keeps only its last seconds of audio in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_suffix(".partial")
        self._file: soundfile.SoundFile | None = None
        self._lock = asyncio.Lock()  # FIFO: appends land in the order they were made
        self.failed = False

    def _append(self, pcm: np.ndarray) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = soundfile.SoundFile(
                self._partial, "w", RATE, 2, "PCM_16", format="FLAC", compression_level=_FLAC_LEVEL
            )
        self._file.write(pcm)

    def _finish(self, recording: CallRecording, samples: int) -> None:
        self._append(recording.pcm(samples))
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._partial.replace(self.path)

    async def append_blocks(self, blocks: list[tuple[bytearray, bytearray]]) -> None:
        async with self._lock:
            try:
                if not self.failed:
                    await asyncio.to_thread(self._append_blocks, blocks)
            except Exception:
                self.failed = True
                log.exception("recording %s: cannot append", self.path)
            finally:
                for caller, agent in blocks:
                    recycle(caller)
                    recycle(agent)

    def _append_blocks(self, blocks: list[tuple[bytearray, bytearray]]) -> None:
        self._append(blocks_pcm(blocks))

    async def finish(self, recording: CallRecording, samples: int) -> bool:
        """Append the rest (up to ``samples`` from the start) and close; True when whole."""
        async with self._lock:
            if self.failed:
                return False
            try:
                await asyncio.to_thread(self._finish, recording, samples)
            except Exception:
                self.failed = True
                log.exception("recording %s: cannot finish", self.path)
                return False
        return True


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
        tenant_dir = _SAFE.sub("_", tenant) or "_"
        return self.directory / tenant_dir / day / f"{_SAFE.sub('_', call_sid)}.flac"

    def open(self, tenant: str, call_sid: str, started_at: datetime) -> RecordingFile:
        return RecordingFile(self.path_for(tenant, call_sid, started_at))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    def flush_later(self, file: RecordingFile, recording: CallRecording, now: int) -> None:
        """Write the blocks that can no longer change, off the audio path."""
        blocks = recording.take_final(now)
        if blocks:
            self._spawn(file.append_blocks(blocks))

    def save_later(
        self, file: RecordingFile, recording: CallRecording, call_sid: str, samples: int
    ) -> None:
        """Finish the file and note its path on the call, off the audio path."""
        self._spawn(self._save(file, recording, call_sid, samples))

    async def _save(
        self, file: RecordingFile, recording: CallRecording, call_sid: str, samples: int
    ) -> None:
        if not await file.finish(recording, samples):
            return
        path = str(file.path)
        # The call's row is written by the write queue; it may still be on its way.
        if not await self._calls.set_call_facts(call_sid, recording_path=path):
            await self._writes.flush(_ROW_WAIT_S)
            if not await self._calls.set_call_facts(call_sid, recording_path=path):
                log.error("call %s: recording saved at %s; no call row", call_sid, path)

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
