"""Writes to Twenty, from the outbox (topic "twenty").

Each message is self-contained: the person as we know them (so a note can create its
person when the upsert before it was lost), plus the note when there is one. Messages are
keyed by our own person id, so one person's writes go out in order, one at a time.

Items are sent one after another, each request through the client's budget (100 a minute
is Twenty's limit). Failures, told apart:
- 429: wait what Twenty said (else half a minute) and try again;
- 5xx, timeouts, refused connections: the worker's backoff; the rest of the batch waits
  with it rather than knocking on a server that is down;
- a body that is not Twenty's shape: logged, then retried;
- 401/403: an operator's problem. Logged at most once a minute, shown on the admin page,
  and nothing is sent for a minute: not a retry storm, and nothing is lost meanwhile;
- any other 4xx: refused for good (kept as rejected, replayable).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_client import (
    NoteInput,
    PersonInput,
    TwentyAuthError,
    TwentyClient,
    TwentyMalformed,
    TwentyRateLimited,
    TwentyRejected,
    TwentyUnavailable,
)
from voice_agent.clock import utc_now
from voice_agent.outbox import Delivered, OutboxItem, Outcome, Rejected, Retry
from voice_agent.storage.people import PeopleRepository
from voice_agent.storage.records import OutboxMessage

log = logging.getLogger(__name__)

TWENTY_TOPIC = "twenty"
#: After a 401/403: how long nothing is sent, and how often it is logged.
AUTH_PAUSE_S = 60.0
_RATE_LIMIT_WAIT_S = 30.0


def person_payload(person: PersonInput) -> dict[str, Any]:
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": person.phone,
    }


def twenty_message(
    tenant: str,
    person_id: int,
    person: PersonInput,
    dedupe: str,
    note: NoteInput | None = None,
) -> OutboxMessage:
    payload: dict[str, Any] = {"person_id": person_id, "person": person_payload(person)}
    if note is not None:
        payload["note"] = {"key": note.key, "title": note.title, "body": note.body}
    return OutboxMessage(
        topic=TWENTY_TOPIC,
        tenant=tenant,
        key=f"{tenant}:person:{person_id}",
        dedupe=dedupe,
        payload=payload,
    )


@dataclass
class TwentyStatus:
    """What the admin page shows about Twenty (this process's view)."""

    auth_error: str | None = None
    auth_error_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_ok_at: datetime | None = None
    requests: int = 0


class _Down(Exception):
    """Twenty is not answering: the rest of the batch waits too."""


class TwentyDelivery:
    topic = TWENTY_TOPIC

    def __init__(
        self,
        client: TwentyClient,
        people: PeopleRepository,
        batch_size: int = 5,
        auth_pause_s: float = AUTH_PAUSE_S,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._people = people
        self.batch_size = batch_size
        self._auth_pause_s = auth_pause_s
        self._clock = clock
        self._monotonic = monotonic
        self.status = TwentyStatus()
        self._paused_until = 0.0  # a refused key: nothing is sent before this
        self._limited_until = 0.0  # a 429: nothing is sent before this
        self._auth_logged_at: float | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        down: str | None = None
        for item in items:
            now = self._monotonic()
            paused = self._paused_until - now
            limited = self._limited_until - now
            if paused > 0:
                outcomes.append(Retry(self.status.auth_error or "Twenty key refused", paused))
            elif limited > 0:
                outcomes.append(Retry("waiting out Twenty's rate limit", limited))
            elif down is not None:
                outcomes.append(Retry(down))
            else:
                try:
                    outcomes.append(await self._one(item))
                except _Down as exc:
                    down = str(exc)
                    outcomes.append(Retry(down))
        self.status.requests = self._client.requests
        return outcomes

    async def _one(self, item: OutboxItem) -> Outcome:
        try:
            await self._send(item)
        except TwentyAuthError as exc:
            self._auth_failed(str(exc))
            return Retry(str(exc), self._auth_pause_s)
        except TwentyRateLimited as exc:
            self._failed(str(exc))
            wait = exc.retry_after_s or _RATE_LIMIT_WAIT_S
            self._limited_until = self._monotonic() + wait
            return Retry(str(exc), wait)
        except TwentyUnavailable as exc:
            self._failed(str(exc))
            raise _Down(str(exc)) from exc
        except TwentyMalformed as exc:
            log.warning("twenty: malformed answer for %s, will retry: %s", item.message.dedupe, exc)
            self._failed(str(exc))
            return Retry(f"malformed answer: {exc}")
        except TwentyRejected as exc:
            self._failed(str(exc))
            return Rejected(str(exc))
        self.status.last_ok_at = self._clock()
        if self.status.auth_error is not None:
            log.info("twenty: the API key is accepted again")
            self.status.auth_error = None
            self.status.auth_error_at = None
        return Delivered()

    async def _send(self, item: OutboxItem) -> None:
        payload = item.message.payload
        person_id = int(payload["person_id"])
        raw = payload["person"]
        person = PersonInput(
            raw.get("first_name") or "",
            raw.get("last_name") or "",
            raw.get("email") or None,
            raw.get("phone") or None,
        )
        twenty_id = await self._people.twenty_id(person_id)
        note = payload.get("note")
        if note is None or twenty_id is None:
            twenty_id = await self._upsert(person_id, person, twenty_id)
        if note is None:
            return
        note_input = NoteInput(str(note["key"]), str(note["title"]), str(note["body"]))
        try:
            await self._client.attach_note(twenty_id, note_input)
        except TwentyRejected:
            # The person we knew may be gone from Twenty (deleted, merged): find or make
            # them again, once, and link the note there.
            twenty_id = await self._upsert(person_id, person, None)
            await self._client.attach_note(twenty_id, note_input)

    async def _upsert(self, person_id: int, person: PersonInput, known: str | None) -> str:
        found = await self._client.upsert_person(person)
        if found.id != known:
            await self._people.set_twenty_id(person_id, found.id)
        return found.id

    def _failed(self, reason: str) -> None:
        self.status.last_error = reason
        self.status.last_error_at = self._clock()

    def _auth_failed(self, reason: str) -> None:
        now = self._monotonic()
        self._paused_until = now + self._auth_pause_s
        self._failed(reason)
        self.status.auth_error = reason
        self.status.auth_error_at = self._clock()
        if self._auth_logged_at is None or now - self._auth_logged_at >= self._auth_pause_s:
            self._auth_logged_at = now
            log.error(
                "twenty: the API key was refused (%s): check TWENTY_API_KEY; writes wait in"
                " the outbox and are retried once a minute",
                reason,
            )
