"""Twenty CRM over its REST API (integrations.md §6), with httpx.

Pinned to Twenty v1.x's Core REST API (twentyhq/twenty main as read in 2026, see the
README): records under ``/rest/<objectNamePlural>``, ``Authorization: Bearer <key>``,
create answers ``{"data": {"createPerson": {…}}}``, update ``{"data": {"updatePerson":
{…}}}``, a list ``{"data": {"people": […]}, "pageInfo": …, "totalCount": …}``.

How each write stays idempotent, so a retry after a lost answer changes nothing:
- a person with an email is upserted on ``emails.primaryEmail`` (unique on Person);
- a phone-only person is searched by ``phones.primaryPhoneNumber`` first, then PATCHed,
  or created with an id derived from the number (a second create upserts on that id);
- a note and its noteTarget get ids derived from the note's key and are upserted on them.

Every request waits on the gate first (Twenty allows 100 requests a minute). Failures are
typed so the caller (the outbox) can tell a retry from an operator's problem.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson

from crm_client.limiter import RequestGate, SlidingWindowLimiter
from crm_client.phones import join_phone, split_e164
from crm_client.records import Activity, ActivityInput, Note, NoteInput, Person, PersonInput

#: The Twenty REST API version these shapes were read from (see the README).
TWENTY_API_VERSION = "v1 (Core REST, twentyhq/twenty main 2026)"
#: Twenty's documented limit: 100 requests a minute per API key. A little under it.
TWENTY_REQUESTS_PER_MINUTE = 95
#: Where our deterministic record ids come from (uuid5 of a key in this namespace).
_NAMESPACE = uuid.UUID("6f1c7a52-3b8e-4d0a-9a55-0c2a7e5b1d13")


class TwentyError(Exception):
    """Anything that kept a request from doing its work."""


class TwentyAuthError(TwentyError):
    """401/403: the API key is wrong, revoked or lacks a permission. An operator fixes it;
    retrying sooner changes nothing."""


class TwentyRateLimited(TwentyError):
    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TwentyUnavailable(TwentyError):
    """5xx, 408, a timeout or a refused connection: worth trying again later."""


class TwentyMalformed(TwentyError):
    """A 2xx whose body is not the shape this version answers with."""


class TwentyRejected(TwentyError):
    """Another 4xx: Twenty refused this request as it is; sending it again will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def record_id(key: str) -> str:
    """A stable UUID for one of our records in Twenty (a note, a phone-only person)."""
    return str(uuid.uuid5(_NAMESPACE, key))


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("messages", "message", "error"):
            value = body.get(key)
            if value:
                return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(body)[:200]


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def person_from_twenty(record: object) -> Person:
    """A Twenty person record as our Person; TwentyMalformed when it is not one."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise TwentyMalformed(f"not a person record: {str(record)[:120]}")
    name = record.get("name") if isinstance(record.get("name"), dict) else {}
    emails = record.get("emails") if isinstance(record.get("emails"), dict) else {}
    email = emails.get("primaryEmail") or None
    return Person(
        id=record["id"],
        first_name=str(name.get("firstName") or ""),
        last_name=str(name.get("lastName") or ""),
        email=str(email).lower() if email else None,
        phone=join_phone(record.get("phones")),
        created_at=_datetime(record.get("createdAt")),
        updated_at=_datetime(record.get("updatedAt")),
    )


def person_body(person: PersonInput) -> dict[str, Any]:
    """The person in Twenty's field shapes (FULL_NAME, EMAILS, PHONES); unknown parts are
    left out, so an update never blanks what Twenty holds."""
    body: dict[str, Any] = {}
    name = {
        k: v for k, v in (("firstName", person.first_name), ("lastName", person.last_name)) if v
    }
    if name:
        body["name"] = name
    if person.email:
        body["emails"] = {"primaryEmail": person.email}
    if person.phone:
        body["phones"] = split_e164(person.phone).twenty()
    return body


class TwentyClient:
    """One Twenty workspace. ``http`` may be shared; otherwise the client owns one."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        gate: RequestGate | None = None,
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._gate: RequestGate = gate or SlidingWindowLimiter(TWENTY_REQUESTS_PER_MINUTE, 60.0)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self.requests = 0

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- the wire ----------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        await self._gate.wait()
        self.requests += 1
        try:
            response = await self._http.request(
                method,
                self._base + path,
                params=params,
                content=orjson.dumps(body) if body is not None else None,
                headers=self._headers,
            )
        except httpx.TimeoutException as exc:
            raise TwentyUnavailable(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            raise TwentyUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in (401, 403):
            raise TwentyAuthError(f"{status} from Twenty: {_message(response)}")
        if status == 429:
            message = f"429 from Twenty: {_message(response)}"
            raise TwentyRateLimited(message, _retry_after(response))
        if status >= 500 or status == 408:
            raise TwentyUnavailable(f"{status} from Twenty: {_message(response)}")
        if status >= 400:
            raise TwentyRejected(status, _message(response))
        try:
            data = response.json()
        except ValueError as exc:
            raise TwentyMalformed(f"{method} {path}: {status}, body not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise TwentyMalformed(f"{method} {path}: no data object in {str(data)[:120]}")
        return data["data"]

    @staticmethod
    def _one(data: dict[str, Any], key: str) -> dict[str, Any]:
        record = data.get(key)
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise TwentyMalformed(f"expected {key} with an id, got {str(data)[:120]}")
        return record

    async def _list(self, plural: str, filter_: str, limit: int = 2) -> list[dict[str, Any]]:
        data = await self._request(
            "GET", f"/rest/{plural}", params={"filter": filter_, "limit": str(limit)}
        )
        records = data.get(plural)
        if isinstance(records, dict) and isinstance(records.get("edges"), list):
            # The older edges/node list shape (integrations.md §6.1): read it too.
            records = [edge.get("node") for edge in records["edges"] if isinstance(edge, dict)]
        if not isinstance(records, list):
            raise TwentyMalformed(f"GET /rest/{plural}: no {plural} list in {str(data)[:120]}")
        return [r for r in records if isinstance(r, dict)]

    # --- the Crm protocol ----------------------------------------------------------------

    async def find_person(
        self, *, phone: str | None = None, email: str | None = None
    ) -> Person | None:
        if email:
            found = await self._list("people", f"emails.primaryEmail[eq]:{_quoted(email)}")
            if found:
                return person_from_twenty(found[0])
        if phone:
            national = split_e164(phone).number
            spellings = [f"phones.primaryPhoneNumber[eq]:{_quoted(national)}"]
            if national != phone:
                spellings.append(f"phones.primaryPhoneNumber[eq]:{_quoted(phone)}")
            filter_ = spellings[0] if len(spellings) == 1 else f"or({','.join(spellings)})"
            found = await self._list("people", filter_)
            if found:
                return person_from_twenty(found[0])
        return None

    async def upsert_person(self, person: PersonInput) -> Person:
        body = person_body(person)
        if person.email:
            data = await self._request("POST", "/rest/people", params={"upsert": "true"}, body=body)
            return person_from_twenty(self._one(data, "createPerson"))
        assert person.phone is not None
        existing = await self.find_person(phone=person.phone)
        if existing is not None:
            data = await self._request("PATCH", f"/rest/people/{existing.id}", body=body)
            return person_from_twenty(self._one(data, "updatePerson"))
        body["id"] = record_id(f"person:phone:{person.phone}")
        data = await self._request("POST", "/rest/people", params={"upsert": "true"}, body=body)
        return person_from_twenty(self._one(data, "createPerson"))

    async def attach_note(self, person_id: str, note: NoteInput) -> Note:
        note_id = record_id(f"note:{note.key}")
        data = await self._request(
            "POST",
            "/rest/notes",
            params={"upsert": "true"},
            body={
                "id": note_id,
                "title": note.title,
                "bodyV2": {"markdown": note.body, "blocknote": None},
            },
        )
        created = self._one(data, "createNote")
        target = await self._request(
            "POST",
            "/rest/noteTargets",
            params={"upsert": "true"},
            body={
                "id": record_id(f"note-target:{note.key}:{person_id}"),
                "noteId": created["id"],
                "personId": person_id,
            },
        )
        self._one(target, "createNoteTarget")
        return Note(
            id=created["id"],
            person_id=person_id,
            key=note.key,
            title=note.title,
            body=note.body,
            fields=dict(note.fields),
            created_at=_datetime(created.get("createdAt")),
        )

    async def record_activity(self, person_id: str, activity: ActivityInput) -> Activity:
        """Twenty has no writable activity object of its own: an activity is a short note on
        the person (its timeline shows it)."""
        note = await self.attach_note(
            person_id,
            NoteInput(
                key=f"activity:{activity.kind}:{activity.ref}",
                title=activity.summary[:200],
                body=activity.summary,
            ),
        )
        return Activity(
            note.id, person_id, activity.kind, activity.ref, activity.summary, activity.at
        )
