"""A local append-only file of write records, for when the database is away.

While the database is unavailable the write queue appends every record here as one JSON
line, flushed to the OS at once: a long outage does not grow memory, and a crash of the
process loses nothing (what the OS has survives the process). Once the database is back
the queue reads the lines back in order and writes them; ``commit`` records how far that
got (in a small side file), so a restart resumes there. Writes are idempotent (turns by
(call_sid, seq), usage by key, outbox messages by dedupe), so the batch in flight at a
crash is simply written again.

Any frozen dataclass record with JSON-able fields and datetimes can be carried: the record
types are looked up by name among the storage ``WriteRecord`` union and ``register``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import typing
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from voice_agent.storage import records

log = logging.getLogger(__name__)

_TYPES: dict[str, type] = {}


def register(cls: type) -> type:
    """Let the journal carry another record type (a dataclass), by its class name."""
    _TYPES[cls.__name__] = cls
    return cls


def _record_types() -> dict[str, type]:
    if not _TYPES:
        for cls in typing.get_args(records.WriteRecord):
            _TYPES.setdefault(cls.__name__, cls)
    return _TYPES


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


def encode(record: object) -> bytes:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}  # type: ignore[arg-type]
    return orjson.dumps(
        {"t": type(record).__name__, "v": fields},
        default=_default,
        option=orjson.OPT_PASSTHROUGH_DATETIME,
    )


def decode(line: bytes) -> object:
    data = orjson.loads(line)
    cls = _record_types().get(data["t"])
    if cls is None:
        raise ValueError(f"unknown record type {data['t']!r}")
    return cls(**_revive(data["v"]))


class Journal:
    """``<path>`` holds the lines, ``<path>.pos`` the byte offset written up to."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pos_path = self.path.with_name(self.path.name + ".pos")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.path, "ab")
        if self._out.tell() and not self._ends_with_newline():
            # A line cut short by a crash mid-write: end it (it is skipped on reading).
            self._out.write(b"\n")
            self._out.flush()
        self._in = open(self.path, "rb")
        self._size = self._out.tell()
        #: Everything before `committed` is in the database.
        self.committed = self._read_pos()
        #: Where the next unread line starts.
        self.read_pos = self.committed
        self.appended = 0
        self._lock: typing.BinaryIO | None = None

    @classmethod
    def claim(cls, directory: Path | str, stem: str = "write-journal") -> Journal:
        """The first journal in `directory` no other process holds (an exclusive lock kept
        for the process's life): each worker gets its own, and a restarted worker takes
        over the file a dead one left, replaying it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for index in range(1024):
            lock = open(directory / f"{stem}-{index}.lock", "wb")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            journal = cls(directory / f"{stem}-{index}.jsonl")
            journal._lock = lock
            return journal
        raise OSError(f"no free write journal in {directory}")

    @property
    def end(self) -> int:
        return self._size

    @property
    def empty(self) -> bool:
        return self.committed >= self._size

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"

    def _read_pos(self) -> int:
        try:
            return int(self._pos_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def unread(self) -> int:
        """Lines after the read position (counted by reading; used at start-up)."""
        self._in.seek(self.read_pos)
        return sum(1 for line in self._in if line.endswith(b"\n"))

    def append(self, record: object) -> int:
        """Append one record; returns the offset just past it."""
        line = encode(record) + b"\n"
        self._out.write(line)
        self._out.flush()
        self.appended += 1
        self._size += len(line)
        return self._size

    def read(self, limit: int) -> Iterator[tuple[object | None, int]]:
        """Up to `limit` records from the read position, each with the offset past it
        (None for a line that cannot be read back: logged, and skipped)."""
        self._in.seek(self.read_pos)
        for _ in range(limit):
            line = self._in.readline()
            if not line.endswith(b"\n"):
                break  # nothing more, or a line cut short by a crash mid-write
            self.read_pos = self._in.tell()
            try:
                yield decode(line), self.read_pos
            except (ValueError, TypeError, KeyError) as exc:
                log.error("journal line at %d unreadable, skipped: %s", self.read_pos, exc)
                yield None, self.read_pos

    def commit(self, offset: int) -> None:
        """Everything up to `offset` is in the database. Once all of it is, the file is
        emptied for the next outage."""
        self.committed = max(self.committed, offset)
        if self.committed >= self.end:
            self._out.truncate(0)
            self._out.seek(0)
            self._size = 0
            self.committed = self.read_pos = 0
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pos_path)
            return
        tmp = self._pos_path.with_name(self._pos_path.name + ".tmp")
        tmp.write_text(str(self.committed))
        os.replace(tmp, self._pos_path)

    def close(self) -> None:
        self._out.close()
        self._in.close()
        if self._lock is not None:
            self._lock.close()
