"""The event record of the contract and the outbox message that carries it.

``{"id": "evt_…", "type", "created_at": ISO-8601, "tenant": slug, "data": {…}}``. The id
is derived from (tenant, type, key) where the key names the fact (a lead's id, a call's
sid, a text's id): emitting the same fact again yields the same id, which is also the
outbox row's dedupe key, so it is stored and delivered once (and a receiver that sees it
twice, after a lost answer or a replay, can tell).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime
from typing import Any

from voice_agent.storage.records import OutboxMessage

TOPIC = "events"

EVENT_TYPES = (
    "lead.created",
    "call.started",
    "call.ended",
    "call.analyzed",
    "sms.received",
    "sms.sent",
    "tenant.suspended",
    "tenant.restored",
)


def event_id(tenant: str, event_type: str, key: str) -> str:
    digest = hashlib.sha256(f"{tenant}\x1f{event_type}\x1f{key}".encode()).digest()
    return "evt_" + base64.b32encode(digest[:15]).decode().lower()


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO-8601 (the payload is stored as JSON)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def build_event(
    tenant: str, event_type: str, data: dict[str, Any], key: str, at: datetime
) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not an event type of the contract: {event_type!r}")
    return {
        "id": event_id(tenant, event_type, key),
        "type": event_type,
        "created_at": _plain(at),
        "tenant": tenant,
        "data": _plain(data),
    }


def event_message(event: dict[str, Any], order: str) -> OutboxMessage:
    """The outbox message of an event; ``order`` is its ordering key (a call's sid: one
    call's events leave one at a time, in the order they happened)."""
    return OutboxMessage(
        topic=TOPIC, tenant=event["tenant"], key=order, dedupe=event["id"], payload=event
    )
