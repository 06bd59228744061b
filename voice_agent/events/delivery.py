"""POST events to their webhook, signed by the Standard Webhooks scheme (outbox topic
"events").

Each attempt is signed afresh (receivers refuse timestamps older than five minutes) under
the same ``webhook-id``, the event's own id. A 2xx is delivered; a 5xx, 408, 429, timeout
or refused connection is retried by the outbox with backoff (for days, see
OutboxWorker.max_age_s); any other answer is refused for good and logged, kept as
rejected (``voice-agent events replay`` can send it again).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx
import orjson

from voice_agent.events.record import TOPIC
from voice_agent.events.targets import Target, Targets
from voice_agent.outbox import Delivered, OutboxItem, Outcome, Rejected, Retry

log = logging.getLogger(__name__)

_RETRIED = frozenset({408, 429})
#: A receiver's Retry-After is followed up to this; beyond it our own backoff decides.
_MAX_RETRY_AFTER_S = 3600.0


def signed_request(target: Target, event: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt."""
    body = orjson.dumps(event)
    now = datetime.now(UTC)
    event_id = str(event["id"])
    headers = {
        "content-type": "application/json",
        "user-agent": "orengen-voice-agent-events/1",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": target.signer.sign(event_id, now, body),
    }
    return body, headers


def outcome_of(status: int, retry_after: str | None) -> Outcome:
    if 200 <= status < 300:
        return Delivered()
    if status >= 500 or status in _RETRIED:
        return Retry(f"HTTP {status}", _retry_after(retry_after))
    return Rejected(f"HTTP {status}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(_MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: our own backoff will do


class EventDelivery:
    topic = TOPIC

    def __init__(
        self,
        targets: Targets,
        *,
        timeout_s: float = 10.0,
        batch_size: int = 50,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.targets = targets
        self.batch_size = batch_size
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
        # A batch holds one message per ordering key (per call): sent side by side.
        return list(await asyncio.gather(*(self.send(item.message.payload) for item in items)))

    async def send(self, event: dict[str, object]) -> Outcome:
        tenant = str(event["tenant"])
        target = await self.targets.resolve(tenant)
        if target is None:
            return Rejected(f"no events webhook for tenant {tenant}")
        body, headers = signed_request(target, event)
        try:
            response = await self._client.post(target.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Retry("timed out")
        except httpx.TransportError as exc:
            return Retry(f"{type(exc).__name__}: {exc}".splitlines()[0])
        outcome = outcome_of(response.status_code, response.headers.get("retry-after"))
        if isinstance(outcome, Rejected):
            log.warning(
                "event %s (%s) refused by %s webhook: HTTP %d, not retried",
                event["id"],
                event["type"],
                "tenant's" if target.own else "the",
                response.status_code,
            )
        return outcome
