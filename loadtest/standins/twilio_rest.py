"""A stand-in for the part of Twilio's REST API the agent calls (integrations.md §3).

Runs on loopback inside the caller's event loop (Starlette app, uvicorn server), checks
HTTP Basic auth like Twilio, keeps a table of calls, and records every request so tests
and load runs can assert on what the agent asked Twilio to do:

    async with TwilioRestStandin("AC...", "token") as twilio:
        client = SomeClient(api_base_url=twilio.base_url)
        ...
        assert twilio.requests[-1].form["Status"] == "completed"

Error bodies copy Twilio's shape (``code``, ``message``, ``more_info``, ``status``).
Error codes used: 20003 (authentication), 20404 (not found), 21201 / 21213 / 21205
(missing To / From / Url), 21218 (invalid Status); for Messages.create 21604 / 21603 /
21602 (missing To / From / Body) and 21610 (recipient texted STOP: see ``block``); others
are not imitated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import inspect
import itertools
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["RecordedRequest", "StandinCall", "StandinMessage", "TwilioRestStandin"]

API_VERSION = "2010-04-01"
_TERMINAL = frozenset({"completed", "canceled", "busy", "failed", "no-answer"})


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    params: tuple[tuple[str, str], ...]  # form fields in arrival order; names may repeat
    authorized: bool
    status: int = 0  # the HTTP status we answered with
    at: float = field(default_factory=time.monotonic)

    @property
    def form(self) -> dict[str, str]:
        """The form fields, last value winning for repeated names."""
        return dict(self.params)

    @property
    def call_sid(self) -> str | None:
        """The CallSid this request addressed, for ``.../Calls/{sid}.json``."""
        _, sep, tail = self.path.rpartition("/Calls/")
        if not sep or not tail.endswith(".json"):
            return None
        return tail.removesuffix(".json")


@dataclass(slots=True)
class StandinCall:
    sid: str
    to: str
    from_: str
    status: str
    direction: str
    url: str | None = None
    twiml: str | None = None
    status_callback: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # every update's fields
    #: Every Calls.create parameter as sent (AsyncAmd, MachineDetection, StatusCallbackEvent…).
    params: tuple[tuple[str, str], ...] = ()
    status_sequence: int = 0
    #: What a fetch reports as the call's price (Twilio: a negative string, later on).
    price: str | None = None

    @property
    def create_form(self) -> dict[str, str]:
        return dict(self.params)


@dataclass(slots=True)
class StandinMessage:
    sid: str
    to: str
    from_: str
    body: str
    status: str
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None


RequestCallback = Callable[[RecordedRequest], Awaitable[None] | None]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling: the host process owns its signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def _new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


class TwilioRestStandin:
    """Loopback imitation of ``api.twilio.com`` for one account."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "standin-auth-token",
        host: str = "127.0.0.1",
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, StandinCall] = {}
        self.messages: dict[str, StandinMessage] = {}
        # Recipients that texted STOP to the account: Messages.create to them fails (21610).
        self.blocked: set[str] = set()
        # Seconds to wait before answering; lets tests exercise client timeouts.
        self.response_delay_s = 0.0
        self._callbacks: list[RequestCallback] = []
        self._injected: list[tuple[int, int, str]] = []
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._base_url: str | None = None
        self._expected_auth = "Basic " + base64.b64encode(
            f"{account_sid}:{auth_token}".encode()
        ).decode("ascii")
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
        self.app = Starlette(
            routes=[
                Route(prefix + "/Calls.json", self._create_call, methods=["POST"]),
                Route(prefix + "/Calls/{call_sid}.json", self._update_call, methods=["POST"]),
                Route(prefix + "/Calls/{call_sid}.json", self._fetch_call, methods=["GET"]),
                Route(prefix + "/Messages.json", self._create_message, methods=["POST"]),
            ]
        )

    # --- test controls -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("stand-in not started")
        return self._base_url

    def on_request(self, callback: RequestCallback) -> None:
        """Run ``callback(request)`` (sync or async) for every request, before answering."""
        self._callbacks.append(callback)

    def inject_error(self, status: int, code: int, message: str, times: int = 1) -> None:
        """Answer the next ``times`` authorised requests with this Twilio error."""
        self._injected.extend(itertools.repeat((status, code, message), times))

    def register_call(
        self, call_sid: str, status: str = "in-progress", to: str = "", from_: str = ""
    ) -> StandinCall:
        """Declare a call that did not come from ``Calls.create`` (e.g. an inbound call)."""
        call = StandinCall(call_sid, to, from_, status, direction="inbound")
        self.calls[call_sid] = call
        return call

    def block(self, number: str) -> None:
        """Act as if `number` texted STOP: Twilio then refuses every message to it."""
        self.blocked.add(number)

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    def requests_for(self, call_sid: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.call_sid == call_sid]

    # --- Twilio's side of a placed call: the webhooks it would send -----------------------

    def _signed(self, url: str, params: dict[str, str]) -> dict[str, str]:
        from twilio.request_validator import RequestValidator

        return {
            "X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, params)
        }

    async def _post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        import httpx

        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.post(url, data=params, headers=self._signed(url, params))
        return response.status_code, response.text

    def _call_params(self, call: StandinCall) -> dict[str, str]:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.from_,
            "To": call.to,
            "Direction": call.direction,
            "ApiVersion": API_VERSION,
        }

    async def answer(self, call_sid: str) -> tuple[int, str]:
        """The callee picked up: fetch the call's TwiML from its Url, signed. Returns
        (HTTP status, body)."""
        call = self.calls[call_sid]
        if not call.url:
            raise ValueError(f"call {call_sid} has no Url")
        call.status = "in-progress"
        return await self._post(call.url, self._call_params(call) | {"CallStatus": "in-progress"})

    async def send_status(self, call_sid: str, status: str, **extra: str) -> int:
        """A status callback to the call's StatusCallback (CallDuration, Price… in extra)."""
        call = self.calls[call_sid]
        if not call.status_callback:
            raise ValueError(f"call {call_sid} has no StatusCallback")
        call.status = status
        params = self._call_params(call) | {
            "CallStatus": status,
            "SequenceNumber": str(call.status_sequence),
            "CallbackSource": "call-progress-events",
            "Timestamp": formatdate(usegmt=True),
        }
        call.status_sequence += 1
        code, _ = await self._post(call.status_callback, params | extra)
        return code

    async def send_amd(self, call_sid: str, answered_by: str, duration_ms: int = 3200) -> int:
        """The asynchronous answering-machine verdict, to AsyncAmdStatusCallback."""
        call = self.calls[call_sid]
        url = call.create_form.get("AsyncAmdStatusCallback")
        if not url:
            raise ValueError(f"call {call_sid} asked for no async AMD callback")
        params = {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "AnsweredBy": answered_by,
            "MachineDetectionDuration": str(duration_ms),
        }
        code, _ = await self._post(url, params)
        return code

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("stand-in already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                task, self._server, self._task = self._task, None, None
                sock.close()
                cause = None if task.cancelled() else task.exception()
                raise RuntimeError("Twilio REST stand-in failed to start") from cause
            await asyncio.sleep(0.005)
        self._base_url = f"http://{self.host}:{port}"
        return self._base_url

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server, self._task, self._base_url = None, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- request handling ----------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        body = await request.body()
        try:
            params = tuple(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            params = ()
        header = request.headers.get("authorization", "")
        authorized = hmac.compare_digest(header.encode(), self._expected_auth.encode())
        recorded = RecordedRequest(request.method, request.url.path, params, authorized)
        self.requests.append(recorded)
        return recorded

    async def _answer(
        self, recorded: RecordedRequest, respond: Callable[[], JSONResponse]
    ) -> JSONResponse:
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        if not recorded.authorized:
            response = _error(401, 20003, "Authenticate")
        elif self._injected:
            response = _error(*self._injected.pop(0))
        else:
            response = respond()
        recorded.status = response.status_code
        for callback in self._callbacks:
            result = callback(recorded)
            if inspect.isawaitable(result):
                await result
        return response

    def _account_ok(self, request: Request) -> bool:
        return request.path_params["account_sid"] == self.account_sid

    def _not_found(self, request: Request) -> JSONResponse:
        return _error(404, 20404, f"The requested resource {request.url.path} was not found")

    def _call_json(self, call: StandinCall) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call.sid}.json"
        now = formatdate(usegmt=True)
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": call.to,
            "to_formatted": call.to,
            "from": call.from_,
            "from_formatted": call.from_,
            "status": call.status,
            "direction": call.direction,
            "api_version": API_VERSION,
            "date_created": now,
            "date_updated": now,
            "start_time": None,
            "end_time": now if call.status in _TERMINAL else None,
            "duration": None,
            "price": call.price,
            "price_unit": "USD",
            "parent_call_sid": None,
            "phone_number_sid": None,
            "answered_by": None,
            "forwarded_from": None,
            "caller_name": None,
            "group_sid": None,
            "queue_time": "0",
            "trunk_sid": None,
            "annotation": None,
            "uri": uri,
            "subresource_uris": {},
        }

    async def _create_call(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)

        def respond() -> JSONResponse:
            if not self._account_ok(request):
                return self._not_found(request)
            form = recorded.form
            if not form.get("To"):
                return _error(400, 21201, "No 'To' number is specified")
            if not form.get("From"):
                return _error(400, 21213, "No 'From' number is specified")
            if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
                return _error(400, 21205, "Url parameter is required.")
            call = StandinCall(
                sid=_new_call_sid(),
                to=form["To"],
                from_=form["From"],
                status="queued",
                direction="outbound-api",
                url=form.get("Url"),
                twiml=form.get("Twiml"),
                status_callback=form.get("StatusCallback"),
                params=recorded.params,
            )
            self.calls[call.sid] = call
            return JSONResponse(self._call_json(call), status_code=201)

        return await self._answer(recorded, respond)

    async def _update_call(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)

        def respond() -> JSONResponse:
            call = self.calls.get(request.path_params["call_sid"])
            # Twilio answers 404 / 20404 for unknown calls and for calls that have ended.
            if not self._account_ok(request) or call is None or call.status in _TERMINAL:
                return self._not_found(request)
            form = recorded.form
            status = form.get("Status")
            if status is not None and status not in ("completed", "canceled"):
                return _error(400, 21218, f"Invalid Status: {status}")
            call.history.append(form)
            if "Twiml" in form:
                call.twiml, call.url = form["Twiml"], None
            if "Url" in form:
                call.url, call.twiml = form["Url"], None
            if "StatusCallback" in form:
                call.status_callback = form["StatusCallback"]
            if status is not None:
                call.status = status
            return JSONResponse(self._call_json(call))

        return await self._answer(recorded, respond)

    async def _fetch_call(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)

        def respond() -> JSONResponse:
            call = self.calls.get(request.path_params["call_sid"])
            if not self._account_ok(request) or call is None:
                return self._not_found(request)
            return JSONResponse(self._call_json(call))

        return await self._answer(recorded, respond)

    def _message_json(self, message: StandinMessage) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message.sid}.json"
        now = formatdate(usegmt=True)
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": None,
            "to": message.to,
            "from": message.from_,
            "body": message.body,
            "status": message.status,
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": str(len(message.media_urls)),
            "api_version": API_VERSION,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": uri,
            "subresource_uris": {},
        }

    async def _create_message(self, request: Request) -> JSONResponse:
        recorded = await self._record(request)

        def respond() -> JSONResponse:
            if not self._account_ok(request):
                return self._not_found(request)
            form = recorded.form
            media = [value for name, value in recorded.params if name == "MediaUrl"]
            if not form.get("To"):
                return _error(400, 21604, "A 'To' phone number is required.")
            if not form.get("From") and not form.get("MessagingServiceSid"):
                return _error(400, 21603, "A 'From' phone number is required.")
            if not form.get("Body") and not media:
                return _error(400, 21602, "Message body is required.")
            if form["To"] in self.blocked:
                return _error(400, 21610, "Attempt to send to unsubscribed recipient")
            message = StandinMessage(
                sid=_new_message_sid(),
                to=form["To"],
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                status="queued",
                media_urls=media,
                status_callback=form.get("StatusCallback"),
            )
            self.messages[message.sid] = message
            return JSONResponse(self._message_json(message), status_code=201)

        return await self._answer(recorded, respond)
