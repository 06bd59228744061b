"""A loopback imitation of the parts of Twenty's Core REST API the agent uses
(integrations.md §6), for the real httpx client pointed at it (``TWENTY_API_URL``).

People, notes and noteTargets, with Twenty's answer shapes: create
``{"data": {"createPerson": {…}}}`` (201), update ``{"data": {"updatePerson": {…}}}``, list
``{"data": {"people": […]}, "pageInfo": {…}, "totalCount": n}``; ``?upsert=true`` merges
into the record that conflicts on ``id`` or on Person's unique ``emails.primaryEmail``; a
second plain create with a taken email or id is a 400, as Twenty answers. The field shapes
are checked (FULL_NAME, EMAILS, PHONES, RICH_TEXT_V2): a payload in another shape is a 400.
The REST filter syntax is read for ``field.sub[eq|neq|ilike]:value`` and ``and(…)``/``or(…)``.

Faults a test can switch: a latency per request, a status for the next N requests (an
outage: 500/503), answers that are not JSON, a wrong key (401), Twenty's own 100
requests/minute limit (429), and refused connections (``stop``; ``start`` on the same port).
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.standins.embedded import EmbeddedServer

_NAME_KEYS = {"firstName", "lastName"}
_EMAIL_KEYS = {"primaryEmail", "additionalEmails"}
_PHONE_KEYS = {
    "primaryPhoneNumber",
    "primaryPhoneCountryCode",
    "primaryPhoneCallingCode",
    "additionalPhones",
}
_PERSON_KEYS = {"id", "name", "emails", "phones", "jobTitle", "city", "companyId", "position"}
_NOTE_KEYS = {"id", "title", "bodyV2", "position"}
_TARGET_KEYS = {"id", "noteId", "personId", "companyId", "opportunityId"}
_CONDITION = re.compile(r"^([A-Za-z0-9_.]+)\[(eq|neq|ilike|like)\]:(.*)$", re.S)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str, error: str = "BadRequestException") -> Response:
    return JSONResponse(
        {"statusCode": status, "error": error, "messages": [message]}, status_code=status
    )


class ShapeError(ValueError):
    pass


def _check_composite(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} must be an object")
    extra = set(value) - keys
    if extra:
        raise ShapeError(f"{what} has unknown sub-fields {sorted(extra)}")
    for key, item in value.items():
        if key.startswith("additional"):
            if item is not None and not isinstance(item, list):
                raise ShapeError(f"{what}.{key} must be a list or null")
        elif item is not None and not isinstance(item, str):
            raise ShapeError(f"{what}.{key} must be a string")
    return value


def _split_top(text: str) -> list[str]:
    """Split on commas not inside parentheses or quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return raw


def _field(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def matches(record: dict[str, Any], expression: str) -> bool:
    """Does ``record`` pass the REST ``filter`` expression? ValueError when it is not one."""
    expression = expression.strip()
    for combinator in ("and", "or", "not"):
        if expression.startswith(combinator + "(") and expression.endswith(")"):
            inner = _split_top(expression[len(combinator) + 1 : -1])
            results = [matches(record, part) for part in inner]
            if combinator == "and":
                return all(results)
            if combinator == "or":
                return any(results)
            return not all(results)
    condition = _CONDITION.match(expression)
    if condition is None:
        raise ValueError(f"invalid filter: {expression}")
    path, op, raw = condition.groups()
    actual, wanted = _field(record, path), _value(raw)
    if op == "eq":
        return actual is not None and str(actual) == wanted
    if op == "neq":
        return actual is None or str(actual) != wanted
    pattern = "^" + re.escape(wanted).replace("%", ".*") + "$"
    flags = re.I if op == "ilike" else 0
    return actual is not None and re.match(pattern, str(actual), flags) is not None


@dataclass(slots=True)
class TwentyRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    at: float  # monotonic


@dataclass
class TwentyStandin:
    api_key: str = "twenty-standin-key"
    #: Seconds each request takes (a realistic hosted Twenty: 0.05–0.3 s).
    latency_s: float = 0.0
    #: Twenty's limit: requests per window per key (None: unlimited).
    rate_limit: tuple[int, float] | None = (100, 60.0)
    #: Sent with a 429 when set (Twenty's own header is not documented).
    retry_after_s: float | None = None
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    note_targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[TwentyRequest] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._fail_status: int | None = None
        self._fail_left = 0
        self._malformed_left = 0
        self._sent: deque[float] = deque()
        self.app = Starlette(
            routes=[
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/rest/people", self._people, methods=["GET", "POST"]),
                Route("/rest/people/{id}", self._person, methods=["GET", "PATCH", "PUT"]),
                Route("/rest/notes", self._notes, methods=["GET", "POST"]),
                Route("/rest/noteTargets", self._targets, methods=["GET", "POST"]),
            ]
        )
        self._server = EmbeddedServer(self.app, "stand-in Twenty server")
        self._port = 0

    # --- control ---

    def fail(self, status: int = 503, times: int = 1_000_000) -> None:
        """Answer the next ``times`` requests with ``status`` (until heal())."""
        self._fail_status, self._fail_left = status, times

    def limit(self, requests: int | None, window_s: float = 60.0) -> None:
        """Enforce ``requests`` per ``window_s`` from now on (None: no limit)."""
        self.rate_limit = None if requests is None else (requests, window_s)
        self._sent.clear()

    def malformed(self, times: int = 1) -> None:
        """Answer the next ``times`` requests 200 with a body that is not JSON."""
        self._malformed_left = times

    def heal(self) -> None:
        self._fail_status, self._fail_left, self._malformed_left = None, 0, 0

    def people_with_email(self, email: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.people.values()
            if str(_field(p, "emails.primaryEmail") or "").lower() == email.lower()
        ]

    def notes_of(self, person_id: str) -> list[dict[str, Any]]:
        ids = [t["noteId"] for t in self.note_targets.values() if t.get("personId") == person_id]
        return [self.notes[i] for i in ids if i in self.notes]

    def answered(self, method: str | None = None, path_prefix: str = "") -> list[TwentyRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    # --- lifecycle ---

    async def start(self, port: int = 0) -> str:
        self._port = await self._server.start(port or self._port)
        self.base_url = f"http://127.0.0.1:{self._port}"
        return self.base_url

    async def stop(self) -> None:
        """Connections are refused until start() again (on the same port)."""
        await self._server.stop()

    async def __aenter__(self) -> TwentyStandin:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- the guard every REST request passes ---

    async def _guard(self, request: Request) -> tuple[Response | None, Any]:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return _error(400, "Invalid JSON body"), None
        answer: Response | None = None
        if self._fail_status is not None and self._fail_left > 0:
            self._fail_left -= 1
            answer = _error(self._fail_status, "stand-in outage", "InternalServerError")
        elif request.headers.get("authorization") != f"Bearer {self.api_key}":
            answer = _error(401, "Token invalid.", "UNAUTHENTICATED")
        elif self._limited():
            headers = {}
            if self.retry_after_s is not None:
                headers["Retry-After"] = str(int(self.retry_after_s))
            answer = JSONResponse(
                {"statusCode": 429, "error": "TooManyRequests", "messages": ["Limit reached"]},
                status_code=429,
                headers=headers,
            )
        elif self._malformed_left > 0:
            self._malformed_left -= 1
            answer = Response("<html>502 upstream hiccup</html>", media_type="text/html")
        self._record(request, body, answer.status_code if answer is not None else 0)
        return answer, body

    def _limited(self) -> bool:
        if self.rate_limit is None:
            return False
        limit, window = self.rate_limit
        now = time.monotonic()
        while self._sent and self._sent[0] <= now - window:
            self._sent.popleft()
        if len(self._sent) >= limit:
            return True
        self._sent.append(now)
        return False

    def _record(self, request: Request, body: Any, status: int) -> None:
        self.requests.append(
            TwentyRequest(
                request.method,
                request.url.path,
                dict(request.query_params),
                body,
                status,
                time.monotonic(),
            )
        )

    def _settle(self, response: Response) -> Response:
        self.requests[-1].status = response.status_code
        return response

    # --- routes ---

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "info": {}, "error": {}, "details": {}})

    def _list(self, request: Request, records: dict[str, dict[str, Any]], plural: str) -> Response:
        expression = request.query_params.get("filter")
        try:
            limit = min(200, int(request.query_params.get("limit", "60")))
            found = [
                copy.deepcopy(r)
                for r in records.values()
                if expression is None or matches(r, expression)
            ]
        except ValueError as exc:
            return _error(400, str(exc))
        page = found[:limit]
        return JSONResponse(
            {
                "data": {plural: page},
                "pageInfo": {
                    "hasNextPage": len(found) > limit,
                    "startCursor": page[0]["id"] if page else None,
                    "endCursor": page[-1]["id"] if page else None,
                },
                "totalCount": len(found),
            }
        )

    async def _people(self, request: Request) -> Response:
        refused, body = await self._guard(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._settle(self._list(request, self.people, "people"))
        try:
            data = self._person_input(body)
        except ShapeError as exc:
            return self._settle(_error(400, str(exc)))
        upsert = request.query_params.get("upsert") == "true"
        existing = self._conflict(data)
        if existing is not None and not upsert:
            return self._settle(_error(400, "A duplicate entry was detected", "QueryFailedError"))
        if existing is not None:
            record = self._merge(existing, data)
        else:
            record = self._new_person(data)
        return self._settle(JSONResponse({"data": {"createPerson": record}}, status_code=201))

    async def _person(self, request: Request) -> Response:
        refused, body = await self._guard(request)
        if refused is not None:
            return refused
        record = self.people.get(request.path_params["id"])
        if record is None:
            return self._settle(_error(404, "Record not found", "NotFoundException"))
        if request.method == "GET":
            return self._settle(JSONResponse({"data": {"person": record}}))
        try:
            data = self._person_input(body)
        except ShapeError as exc:
            return self._settle(_error(400, str(exc)))
        data.pop("id", None)
        email = _field(data, "emails.primaryEmail")
        if email and any(p["id"] != record["id"] for p in self.people_with_email(email)):
            return self._settle(_error(400, "A duplicate entry was detected", "QueryFailedError"))
        return self._settle(JSONResponse({"data": {"updatePerson": self._merge(record, data)}}))

    def _person_input(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ShapeError("body must be an object")
        extra = set(body) - _PERSON_KEYS
        if extra:
            raise ShapeError(f"unknown fields {sorted(extra)}")
        if "name" in body:
            _check_composite(body["name"], _NAME_KEYS, "name")
        if "emails" in body:
            _check_composite(body["emails"], _EMAIL_KEYS, "emails")
        if "phones" in body:
            phones = _check_composite(body["phones"], _PHONE_KEYS, "phones")
            country = phones.get("primaryPhoneCountryCode")
            if country and not re.fullmatch(r"[A-Z]{2}", country):
                raise ShapeError("phones.primaryPhoneCountryCode must be an ISO 3166 code")
            code = phones.get("primaryPhoneCallingCode")
            if code and not re.fullmatch(r"\+\d{1,4}", code):
                raise ShapeError("phones.primaryPhoneCallingCode must look like +1")
        if "id" in body:
            uuid.UUID(str(body["id"]))
        return copy.deepcopy(body)

    def _conflict(self, data: dict[str, Any]) -> dict[str, Any] | None:
        if data.get("id") in self.people:
            return self.people[data["id"]]
        email = _field(data, "emails.primaryEmail")
        if email:
            same = self.people_with_email(email)
            if same:
                return same[0]
        return None

    def _new_person(self, data: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        record: dict[str, Any] = {
            "id": str(data.get("id") or uuid.uuid4()),
            "name": {"firstName": "", "lastName": ""},
            "emails": {"primaryEmail": "", "additionalEmails": None},
            "phones": {
                "primaryPhoneNumber": "",
                "primaryPhoneCountryCode": "",
                "primaryPhoneCallingCode": "",
                "additionalPhones": None,
            },
            "jobTitle": "",
            "city": "",
            "companyId": None,
            "position": len(self.people),
            "createdAt": now,
            "updatedAt": now,
            "deletedAt": None,
            "createdBy": {"source": "API", "name": "stand-in key"},
        }
        self.people[record["id"]] = record
        return self._merge(record, {k: v for k, v in data.items() if k != "id"})

    def _merge(self, record: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        for key, value in data.items():
            if key == "id":
                continue
            if isinstance(value, dict) and isinstance(record.get(key), dict):
                record[key].update(value)
            else:
                record[key] = value
        record["updatedAt"] = _now()
        return copy.deepcopy(record)

    async def _notes(self, request: Request) -> Response:
        refused, body = await self._guard(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._settle(self._list(request, self.notes, "notes"))
        if not isinstance(body, dict) or set(body) - _NOTE_KEYS:
            return self._settle(_error(400, "invalid note fields"))
        rich = body.get("bodyV2")
        if rich is not None:
            try:
                _check_composite(rich, {"markdown", "blocknote"}, "bodyV2")
            except ShapeError as exc:
                return self._settle(_error(400, str(exc)))
        note_id = str(body.get("id") or uuid.uuid4())
        existing = self.notes.get(note_id)
        if existing is not None and request.query_params.get("upsert") != "true":
            return self._settle(_error(400, "Record already exists"))
        now = _now()
        note = existing or {"id": note_id, "createdAt": now, "deletedAt": None}
        note.update({k: v for k, v in body.items() if k != "id"})
        note["updatedAt"] = now
        self.notes[note_id] = note
        return self._settle(
            JSONResponse({"data": {"createNote": copy.deepcopy(note)}}, status_code=201)
        )

    async def _targets(self, request: Request) -> Response:
        refused, body = await self._guard(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._settle(self._list(request, self.note_targets, "noteTargets"))
        if not isinstance(body, dict) or set(body) - _TARGET_KEYS:
            return self._settle(_error(400, "invalid noteTarget fields"))
        if body.get("noteId") not in self.notes:
            return self._settle(_error(400, "noteId does not reference a note"))
        if body.get("personId") is not None and body["personId"] not in self.people:
            return self._settle(_error(400, "personId does not reference a person"))
        target_id = str(body.get("id") or uuid.uuid4())
        existing = self.note_targets.get(target_id)
        if existing is not None and request.query_params.get("upsert") != "true":
            return self._settle(_error(400, "Record already exists"))
        target = existing or {"id": target_id, "createdAt": _now()}
        target.update({k: v for k, v in body.items() if k != "id"})
        self.note_targets[target_id] = target
        return self._settle(
            JSONResponse({"data": {"createNoteTarget": copy.deepcopy(target)}}, status_code=201)
        )
