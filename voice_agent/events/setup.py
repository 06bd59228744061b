"""Wiring the events into a running server: the delivery on the outbox, the call sink,
and the hooks of the flows that emit (billing, analysis, SMS). Called by build_runtime."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from voice_agent.events.call_events import CallEventSink
from voice_agent.events.delivery import EventDelivery
from voice_agent.events.emitter import Events
from voice_agent.events.targets import Targets
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.sms import SmsMessage, SmsThread

if TYPE_CHECKING:
    from voice_agent.analysis.service import AnalysedCall
    from voice_agent.runtime import Runtime

log = logging.getLogger(__name__)


async def build_events(runtime: Runtime) -> tuple[Events, CallEventSink]:
    settings = runtime.settings
    targets = Targets(
        EventTargetRepository(runtime.database),
        settings.events_webhook_url,
        settings.events_webhook_secret,
    )
    await targets.refresh()
    events = Events(runtime.writes, targets, runtime.clock)
    delivery = EventDelivery(targets)
    events.delivery = delivery
    if runtime.outbox is not None:
        runtime.outbox.register(delivery)
    if runtime.billing is not None:
        runtime.billing.on_change(billing_hook(events))
    if runtime.sms is not None:
        hook = text_hook(events)
        runtime.sms.on_text = hook
        runtime.sms.sender.on_text = hook
    prices = runtime.billing.prices if runtime.billing is not None else None
    return events, CallEventSink(events, prices)


def billing_hook(events: Events) -> Any:
    def changed(tenant: str, kind: str, data: dict[str, Any]) -> None:
        # Each suspension (or restoration) is its own fact: keyed by when it happened.
        at = str(data.get("suspended_at") or data.get("restored_at") or "")
        events.emit(tenant, kind, data, key=f"{kind}:{at}", order=f"tenant:{tenant}")

    return changed


def analysis_hook(events: Events) -> Any:
    async def analyzed(call: AnalysedCall) -> None:
        analysis = call.analysis
        events.emit(
            call.tenant,
            "call.analyzed",
            {
                "call_sid": call.call_sid,
                "direction": call.direction,
                "number": call.number,
                "lead_id": call.lead_id,
                "summary": analysis.get("summary", ""),
                "outcome": analysis.get("outcome", "other"),
                "fields": analysis.get("fields") or {},
            },
            key=call.call_sid,
        )

    return analyzed


def text_hook(events: Events) -> Any:
    def text(kind: str, thread: SmsThread, message: SmsMessage) -> None:
        inbound = message.direction == "inbound"
        events.emit(
            thread.tenant,
            kind,
            {
                "thread_id": thread.id,
                "message_id": message.id,
                "message_sid": message.message_sid,
                "from": thread.number if inbound else thread.business_number,
                "to": thread.business_number if inbound else thread.number,
                "body": message.body,
                "segments": message.segments,
                "media_urls": list(message.media_urls),
                "lead_id": thread.lead_id,
            },
            key=f"sms:{message.id}",
            order=f"sms:{thread.id}",
            at=message.created_at,
        )

    return text
