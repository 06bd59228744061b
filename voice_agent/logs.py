"""Logging: LOG_FORMAT (text or json) and LOG_LEVEL, the same in every uvicorn worker.

A call's identity lives in a context variable: the media socket's task sets it when the
call's session opens, and every task the session starts inherits it, so each line logged on
a call's behalf (the session, the provider requests, the recorder) carries ``call_sid`` and
``tenant`` without anyone passing them. With LOG_FORMAT=json each line is one JSON object.
"""

from __future__ import annotations

import contextvars
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

_CALL: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "voice_agent_call", default=None
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(call)s: %(message)s"
#: Loggers that say one line per request or transcription: noise in a server's log.
CHATTY = ("faster_whisper", "httpx", "alembic")


def bind_call(call_sid: str, tenant: str | None = None) -> None:
    """This task (and the tasks it starts from now on) logs as part of this call."""
    _CALL.set((call_sid, tenant or ""))


def current_call() -> tuple[str, str] | None:
    return _CALL.get()


class CallContext(logging.Filter):
    """Puts the call of the current context on every record (empty outside a call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        call = _CALL.get()
        record.call_sid, record.tenant = call if call is not None else ("", "")
        record.call = f" [{call[0]} {call[1]}]" if call is not None else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the call when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_sid = getattr(record, "call_sid", "")
        if call_sid:
            entry["call_sid"] = call_sid
            entry["tenant"] = getattr(record, "tenant", "")
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(entry, default=str).decode()


def log_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the whole process, uvicorn's loggers included (uvicorn applies it in
    each worker it spawns, where the parent's logging set-up does not reach)."""
    formatter: dict[str, Any] = (
        {"()": "voice_agent.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["call"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"call": {"()": "voice_agent.logs.CallContext"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["main"], "level": level, "propagate": False},
            **{name: {"level": "WARNING"} for name in CHATTY},
        },
    }


def configure(log_format: str = "text", level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(log_config(log_format, level))
