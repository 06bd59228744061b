"""call.started and call.ended from a call's session sink events.

A session sink, so it sees exactly what the recorder sees and puts its events on the same
write queue right after the recorder's records: a call's events are stored in the order
its records are, keyed by the call's sid (delivered one at a time, in order). It keeps a
few numbers per live call (start time, turns, usage totals) and nothing per audio frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from voice_agent.billing.prices import PriceTable
from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent, UsageEvent
from voice_agent.events.emitter import Events


@dataclass(slots=True)
class _Live:
    started_at: datetime
    turns: set[int] = field(default_factory=set)
    usage: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    first_audio_ms: float | None = None


def _parties(call: CallInfo) -> dict[str, str]:
    return {
        "call_sid": call.call_sid,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "agent": call.agent,
    }


class CallEventSink:
    def __init__(self, events: Events, prices: PriceTable | None = None) -> None:
        self._events = events
        self._prices = prices
        self._live: dict[str, _Live] = {}

    def call_started(self, call: CallInfo, at: datetime) -> None:
        self._live[call.call_sid] = _Live(at)
        self._events.emit(
            call.tenant,
            "call.started",
            _parties(call) | {"pipeline": call.pipeline, "started_at": at},
            key=call.call_sid,
            at=at,
        )

    def turn(self, call: CallInfo, turn: TurnEvent) -> None:
        live = self._live.get(call.call_sid)
        if live is not None and turn.role != "event":
            live.turns.add(turn.seq)  # a barge-in re-sends a seq: counted once

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        live = self._live.pop(call.call_sid, None)
        data: dict[str, object] = _parties(call) | {
            "ended_at": event.ended_at,
            "end_reason": event.reason,
        }
        if live is not None:
            data |= {
                "started_at": live.started_at,
                "duration_s": round((event.ended_at - live.started_at).total_seconds(), 3),
                "turns": len(live.turns),
                "usage": {meter: round(q, 3) for meter, q in sorted(live.usage.items())},
                "first_audio_ms": live.first_audio_ms,
            }
            if self._prices is not None:
                # Provider cost of the call's speech and model use (telephony is billed
                # by Twilio after the call: see the call's record for the full figure).
                data["cost_usd"] = round(live.cost_usd, 6)
        self._events.emit(call.tenant, "call.ended", data, key=call.call_sid, at=event.ended_at)

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None:
        live = self._live.get(call.call_sid)
        if live is not None:
            live.first_audio_ms = round(first_audio_ms, 1)

    def barge_in(self, call: CallInfo, clear_ms: float) -> None: ...

    def provider_error(self, call: CallInfo, stage: str) -> None: ...

    def usage(self, call: CallInfo, usage: UsageEvent) -> None:
        live = self._live.get(call.call_sid)
        if live is None:
            return
        live.usage[usage.meter] = live.usage.get(usage.meter, 0.0) + usage.quantity
        if self._prices is not None:
            live.cost_usd += self._prices.cost(usage.meter, usage.model, usage.quantity)
