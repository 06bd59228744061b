"""The session sink of a running server: calls and turns to the write queue, figures to
Prometheus, live events to the bus (the dashboard's live view). Never blocks: the write
queue and the bus both take what they are given synchronously."""

from __future__ import annotations

import itertools
import logging
import secrets
from datetime import UTC, datetime

from voice_agent.bus import Bus
from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent, UsageEvent
from voice_agent.metrics import Metrics
from voice_agent.storage.metering import stripe_message
from voice_agent.storage.records import CallEnded, CallStarted, TurnRecord, UsageRecord
from voice_agent.storage.write_queue import WriteQueue

log = logging.getLogger(__name__)

_FAILED_REASONS = frozenset({"error"})
#: Usage row keys: unique across processes (a call resumed by another worker goes on
#: counting there) without a random draw per row.
_PROCESS = secrets.token_hex(4)


class CallRecorder:
    def __init__(
        self,
        queue: WriteQueue,
        metrics: Metrics,
        bus: Bus | None = None,
        *,
        metering: bool = True,
        report_usage: bool = False,
    ) -> None:
        self._queue = queue
        self._metrics = metrics
        self._bus = bus
        self._metering = metering
        self._report = report_usage  # each row to Stripe too, through the outbox
        self._usage_ids = itertools.count(1)

    def call_started(self, call: CallInfo, at: datetime) -> None:
        self._metrics.active_calls.inc()
        self._queue.put(
            CallStarted(
                call_sid=call.call_sid,
                tenant=call.tenant,
                direction=call.direction,
                from_number=call.from_number,
                to_number=call.to_number,
                agent=call.agent,
                pipeline=call.pipeline,
                started_at=at,
                metadata={"stream_sid": call.stream_sid},
                agent_version=call.agent_version,
                is_test=call.is_test,
            )
        )
        if self._bus is not None:
            self._bus.publish(
                {
                    "type": "call_started",
                    "call_sid": call.call_sid,
                    "tenant": call.tenant,
                    "direction": call.direction,
                    "from": call.from_number,
                    "to": call.to_number,
                    "agent": call.agent,
                    "started_at": at.isoformat(),
                }
            )

    def turn(self, call: CallInfo, turn: TurnEvent) -> None:
        self._metrics.turns.labels(turn.role).inc()
        latency = turn.latency
        timings: dict[str, float | None] = {}
        if latency is not None:
            timings = {
                "endpointing_ms": latency.endpointing_ms,
                "stt_ms": latency.stt_ms,
                "llm_first_token_ms": latency.llm_first_token_ms,
                "llm_ms": latency.llm_ms,
                "tts_first_byte_ms": latency.tts_first_byte_ms,
                "total_ms": latency.total_ms,
                "server_ms": latency.server_ms,
            }
            stage = self._metrics.stage_ms
            for name in ("endpointing", "stt", "llm_first_token", "tts_first_byte", "total"):
                value = timings[f"{name}_ms"]
                if value is not None:
                    stage.labels(name).observe(value)
            self._metrics.server_ms.observe(latency.server_ms)
        record = TurnRecord(
            call_sid=call.call_sid,
            seq=turn.seq,
            role=turn.role,
            text=turn.text,
            started_at=turn.started_at,
            ended_at=turn.ended_at,
            interrupted=turn.interrupted,
            **timings,
        )
        self._queue.put(record)
        if self._bus is not None:
            # The same seq again (a barge-in trimming what was heard) replaces the turn.
            self._bus.publish(
                {
                    "type": "turn",
                    "call_sid": call.call_sid,
                    "tenant": call.tenant,
                    "seq": turn.seq,
                    "role": turn.role,
                    "text": turn.text,
                    "started_at": turn.started_at.isoformat(),
                    "interrupted": turn.interrupted,
                    "latency_ms": timings.get("total_ms"),
                }
            )

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        self._metrics.active_calls.dec()
        self._metrics.calls.labels(event.reason).inc()
        status = "failed" if event.reason in _FAILED_REASONS else "completed"
        self._queue.put(CallEnded(call.call_sid, event.ended_at, status, event.reason))
        if self._bus is not None:
            self._bus.publish(
                {
                    "type": "call_ended",
                    "call_sid": call.call_sid,
                    "tenant": call.tenant,
                    "status": status,
                    "reason": event.reason,
                    "ended_at": event.ended_at.isoformat(),
                }
            )

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None:
        self._metrics.greeting_ms.observe(first_audio_ms)

    def barge_in(self, call: CallInfo, clear_ms: float) -> None:
        self._metrics.clear_ms.observe(clear_ms)

    def provider_error(self, call: CallInfo, stage: str) -> None:
        self._metrics.provider_errors.labels(stage).inc()

    def usage(self, call: CallInfo, usage: UsageEvent) -> None:
        if not self._metering:
            return
        record = UsageRecord(
            key=f"{call.call_sid}:{_PROCESS}:{next(self._usage_ids)}",
            tenant=call.tenant,
            call_sid=call.call_sid,
            meter=usage.meter,
            quantity=usage.quantity,
            model=usage.model,
            at=datetime.now(UTC),
        )
        self._queue.put(record)
        if self._report:
            # Same queue, same transaction as the row: never one without the other.
            self._queue.put(stripe_message(record))
