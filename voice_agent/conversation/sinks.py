"""Several session sinks as one: the recorder, the follow-up SMS, whatever comes next."""

from __future__ import annotations

import logging
from datetime import datetime

from voice_agent.conversation.ports import (
    CallEndedEvent,
    CallInfo,
    SessionSink,
    TurnEvent,
    UsageEvent,
)

log = logging.getLogger(__name__)


class TeeSink:
    """Passes every event to each sink in order; one sink failing never stops the others
    (or the call)."""

    def __init__(self, *sinks: SessionSink) -> None:
        self.sinks = sinks

    def _each(self, method: str, *args: object) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:
                log.exception("session sink %s.%s failed", type(sink).__name__, method)

    def call_started(self, call: CallInfo, at: datetime) -> None:
        self._each("call_started", call, at)

    def turn(self, call: CallInfo, turn: TurnEvent) -> None:
        self._each("turn", call, turn)

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        self._each("call_ended", call, event)

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None:
        self._each("greeting_sent", call, first_audio_ms)

    def barge_in(self, call: CallInfo, clear_ms: float) -> None:
        self._each("barge_in", call, clear_ms)

    def provider_error(self, call: CallInfo, stage: str) -> None:
        self._each("provider_error", call, stage)

    def usage(self, call: CallInfo, usage: UsageEvent) -> None:
        self._each("usage", call, usage)
