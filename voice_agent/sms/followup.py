"""The follow-up text after a call, as a session sink beside the call recorder."""

from __future__ import annotations

from datetime import datetime

from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent, UsageEvent
from voice_agent.sms.service import SmsService


class FollowUpSink:
    """SessionSink that asks for the agent's follow-up SMS once a call has ended, if the
    other party said anything at all (no text after a call nobody answered). Never blocks:
    the sending runs as a task owned by the SMS service."""

    def __init__(self, service: SmsService) -> None:
        self._service = service
        self._spoke: set[str] = set()

    def call_started(self, call: CallInfo, at: datetime) -> None:
        pass

    def turn(self, call: CallInfo, turn: TurnEvent) -> None:
        if turn.role == "caller":
            self._spoke.add(call.call_sid)

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        if call.call_sid in self._spoke:
            self._spoke.discard(call.call_sid)
            self._service.follow_up(call)

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None:
        pass

    def barge_in(self, call: CallInfo, clear_ms: float) -> None:
        pass

    def provider_error(self, call: CallInfo, stage: str) -> None:
        pass

    def usage(self, call: CallInfo, usage: UsageEvent) -> None:
        pass
