"""The slice of Twilio's REST API the agent uses: hang up, redirect, place calls (§3),
send texts (§4.3).

Built on twilio-python's ``*_async`` resource methods, which never block the event loop.
Their transport is an httpx client plugged in through the SDK's ``AsyncHttpClient``
extension point: httpx is already a project dependency, pools connections, and avoids the
SDK's aiohttp client, which uses an auth API aiohttp has deprecated.

``api_base_url`` (``TWILIO_API_BASE_URL``) points the SDK's ``api`` domain elsewhere: a
regional edge, a proxy, or the loopback stand-in the tests and load tests run.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

__all__ = ["TwilioRest", "TwilioRestError"]

_T = TypeVar("_T")
_logger = logging.getLogger(__name__)

# Twilio's "resource not found": updating a call that has already ended gives this.
_NOT_FOUND_CODE = 20404
# Call SIDs go into the URL path; anything but letters and digits could walk elsewhere.
_SID = re.compile(r"[A-Za-z0-9]{1,64}")


class _HttpxTwilioClient(AsyncHttpClient):
    """The SDK's async transport contract, fulfilled by one pooled httpx client."""

    def __init__(self, timeout: float) -> None:
        super().__init__(logger=_logger, is_async=True, timeout=timeout)
        self._http = httpx.AsyncClient(timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - signature fixed by the SDK
        allow_redirects: bool = False,
    ) -> Response:
        response = await self._http.request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout if timeout is not None else self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        await self._http.aclose()


class TwilioRestError(Exception):
    """A failed Twilio REST request.

    ``status`` is the HTTP status, or 0 when no response arrived (connection refused,
    timeout, unreadable body); ``code`` is Twilio's error code when it sent one.
    """

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Twilio REST {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class TwilioRest:
    """Async Twilio REST client for one account.

    The underlying HTTP session is opened on first use, inside the running event loop,
    and must be closed with `aclose` (or ``async with``) on the same loop.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._api_base_url = api_base_url.rstrip("/") if api_base_url else None
        self._timeout = timeout
        self._http: _HttpxTwilioClient | None = None
        self._client: Client | None = None

    @property
    def account_sid(self) -> str:
        return self._account_sid

    def _twilio(self) -> Client:
        if self._client is None:
            # The connection pool belongs to the loop it is first used on: create it there.
            self._http = _HttpxTwilioClient(self._timeout)
            client = Client(self._account_sid, self._auth_token, http_client=self._http)
            if self._api_base_url is not None:
                # Domain.base_url is what every resource URL under client.api is built from.
                client.api.base_url = self._api_base_url
                # TWILIO_EDGE / TWILIO_REGION from the environment would rewrite the host
                # into "<product>.<edge>.<region>.twilio.com" and lose the override.
                client.edge = None
                client.region = None
            self._client = client
        return self._client

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(self, request: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._timeout):
                return await request
        except TwilioRestException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            raise TwilioRestError(exc.status, code, exc.msg) from exc
        except TimeoutError as exc:
            raise TwilioRestError(0, None, f"no response within {self._timeout} s") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise TwilioRestError(0, None, f"request failed: {exc!r}") from exc
        except ValueError as exc:  # a 2xx body that is not the JSON the SDK expects
            raise TwilioRestError(0, None, f"unreadable response: {exc}") from exc

    def _call_context(self, call_sid: str) -> Any:
        if not isinstance(call_sid, str) or not _SID.fullmatch(call_sid):
            raise ValueError(f"not a call SID: {call_sid!r}")
        return self._twilio().api.account.calls(call_sid)

    async def hangup(self, call_sid: str) -> None:
        """End the call. A call Twilio no longer knows (already ended) counts as done."""
        context = self._call_context(call_sid)
        try:
            await self._call(context.update_async(status="completed"))
        except TwilioRestError as exc:
            if exc.status == 404 or exc.code == _NOT_FOUND_CODE:
                return
            raise

    async def update_twiml(self, call_sid: str, twiml: str) -> None:
        """Replace the call's running TwiML (this also ends its media stream)."""
        if not twiml:
            raise ValueError("twiml must not be empty")
        await self._call(self._call_context(call_sid).update_async(twiml=twiml))

    async def create_call(
        self,
        to: str,
        from_: str,
        url: str | None,
        status_callback: str | None = None,
        **extra: Any,
    ) -> str:
        """Place an outbound call; returns its CallSid.

        ``extra`` takes any other `Calls.create` keyword (``twiml`` instead of ``url``,
        ``status_callback_event``, ``machine_detection``, ``async_amd``...).
        """
        if not to or not from_:
            raise ValueError("to and from_ are required")
        kwargs: dict[str, Any] = dict(extra)
        if url is not None:
            kwargs["url"] = url
        if status_callback is not None:
            kwargs["status_callback"] = status_callback
        calls = self._twilio().api.account.calls
        call = await self._call(calls.create_async(to=to, from_=from_, **kwargs))
        if not call.sid:
            raise TwilioRestError(0, None, "create call response has no sid")
        return call.sid

    async def send_sms(
        self,
        to: str,
        from_: str,
        body: str,
        status_callback: str | None = None,
        media_url: list[str] | None = None,
    ) -> tuple[str, str]:
        """Send a text (Messages.create, §4.3); returns (MessageSid, status).

        A number that texted STOP is refused by Twilio with HTTP 400 / code 21610."""
        if not to or not from_:
            raise ValueError("to and from_ are required")
        if not body and not media_url:
            raise ValueError("a message needs a body or media")
        kwargs: dict[str, Any] = {"to": to, "from_": from_, "body": body}
        if status_callback is not None:
            kwargs["status_callback"] = status_callback
        if media_url:
            kwargs["media_url"] = media_url
        messages = self._twilio().api.account.messages
        message = await self._call(messages.create_async(**kwargs))
        if not message.sid:
            raise TwilioRestError(0, None, "create message response has no sid")
        return message.sid, str(message.status or "queued")

    async def call_price(self, call_sid: str) -> tuple[float | None, str | None]:
        """The call's (price, unit) as Twilio bills it: a positive amount, or None while
        Twilio has not priced it yet (that takes a while after the call ends)."""
        call = await self._call(self._call_context(call_sid).fetch_async())
        price = call.price
        try:
            amount = abs(float(price)) if price not in (None, "") else None
        except (TypeError, ValueError):
            amount = None
        return amount, call.price_unit
