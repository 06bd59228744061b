"""Call recordings on disk: written once the call ends (in a worker thread), found through
calls.recording_path, deleted after the tenant's retention days.

Layout: ``RECORDINGS_DIR/<tenant>/<YYYY-MM-DD>/<call_sid>.flac`` (default RECORDINGS_DIR is
DATA_DIR/recordings); two channels, caller then agent, 8 kHz, 16-bit FLAC. The first sample
is calls.started_at, so turn times index straight into the file.

A call resumed on another worker (voice_agent.resume) goes on in the same file: the
resumed part writes its own ``<call_sid>.r<N>.partial`` which starts with what the earlier
parts left (the finished file, or the partial of a worker that was killed, read up to its
last whole frame), then silence up to the moment the call resumed, then its own audio; the
finished file replaces ``<call_sid>.flac``. Across hosts this needs RECORDINGS_DIR on shared
storage; without it the earlier part is silence, and the resumed part is still in place on
the call's timeline.
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

from media.recording import BLOCK, RATE, CallRecording, blocks_pcm, recycle
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.tenants import TenantRepository
from voice_agent.storage.write_queue import WriteQueue

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_ROW_WAIT_S = 10.0
#: libsndfile's fastest FLAC setting: on 8 kHz speech it encodes in two thirds of the default's
#: time (1.0 against 1.4 ms for 5 s of a call) and the files come out no larger.
_FLAC_LEVEL = 0.0
#: A killed worker's partial is read this many samples at a time: a read that reaches its
#: truncated end fails whole, so this (one FLAC frame, half a second) is what is lost of it.
_CARRY_CHUNK = 4096


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


def carry_over(out: soundfile.SoundFile, source: Path | None, lead: int) -> int:
    """Copy the first ``lead`` samples of ``source`` into ``out`` (as much as can be read:
    a killed worker's partial ends inside its last frame), then silence up to ``lead``, in
    blocks (an hour-long lead is never one array). Returns the samples taken from source."""
    copied = 0
    if source is not None:
        try:
            with soundfile.SoundFile(source) as earlier:
                while copied < lead:
                    try:
                        chunk = earlier.read(min(_CARRY_CHUNK, lead - copied), dtype="int16")
                    except RuntimeError:  # the truncated end of a killed worker's file
                        break
                    if not len(chunk):
                        break
                    out.write(chunk)
                    copied += len(chunk)
        except (RuntimeError, OSError) as exc:
            log.warning("recording %s: earlier part unreadable: %s", source, exc)
    taken = copied
    silence = np.zeros((BLOCK, 2), dtype=np.int16)
    while copied < lead:
        n = min(BLOCK, lead - copied)
        out.write(silence[:n])
        copied += n
    return taken


class RecordingFile:
    """One call's FLAC, appended block by block in worker threads while the call goes on,
    so a call keeps only its last seconds of audio in memory."""

    def __init__(self, path: Path, part: int = 0, lead_samples: int = 0) -> None:
        """``part`` > 0: the call's part after its N-th resume, whose own first sample is
        ``lead_samples`` into the call."""
        self.path = path
        self._part = part
        self._lead = lead_samples
        suffix = ".partial" if part == 0 else f".r{part}.partial"
        self._partial = path.with_suffix(suffix)
        self._file: soundfile.SoundFile | None = None
        self._lock = asyncio.Lock()  # FIFO: appends land in the order they were made
        self.failed = False

    def _append(self, pcm: np.ndarray) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = soundfile.SoundFile(
                self._partial, "w", RATE, 2, "PCM_16", format="FLAC", compression_level=_FLAC_LEVEL
            )
            if self._part > 0:
                carry_over(self._file, self._earlier(), self._lead)
        self._file.write(pcm)

    def _earlier_parts(self) -> list[Path]:
        """Files the call's earlier parts left: the finished one, partials of killed ones."""
        candidates = [self.path, self.path.with_suffix(".partial")]
        candidates += self.path.parent.glob(f"{self.path.stem}.r*.partial")
        return [p for p in candidates if p != self._partial and p.exists()]

    def _earlier(self) -> Path | None:
        # The newest holds the most: each part starts from what the one before it left.
        parts = self._earlier_parts()
        return max(parts, key=lambda p: p.stat().st_mtime_ns) if parts else None

    def _finish(self, recording: CallRecording, samples: int) -> None:
        self._append(recording.pcm(samples))
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._partial.replace(self.path)
            if self._part > 0:
                for stale in self._earlier_parts():
                    if stale != self.path:
                        stale.unlink(missing_ok=True)  # their audio is in this file now

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

    def open(
        self, tenant: str, call_sid: str, started_at: datetime, part: int = 0, lead: int = 0
    ) -> RecordingFile:
        """The call's file; ``part`` > 0 (after a resume) goes on from the earlier parts."""
        return RecordingFile(self.path_for(tenant, call_sid, started_at), part, lead)

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
