"""Who is asking: the session cookie, the signed-in user, CSRF on every POST, and the
tenant scope every query is given. Sign-in and sign-out handlers live here too."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from voice_agent.billing.service import Standing
from voice_agent.dashboard.branding import PLATFORM, Brand
from voice_agent.dashboard.sessions import COOKIE_NAME, MAX_AGE_S, Session
from voice_agent.dashboard.state import Dashboard
from voice_agent.storage.database import DatabaseUnavailable
from voice_agent.storage.tenants import UnknownTenant
from voice_agent.storage.users import User

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(slots=True, frozen=True)
class Viewer:
    user: User
    session: Session
    brand: Brand
    #: The tenant's billing standing, for the suspension and spend-cap banners (#14).
    standing: Standing | None = None

    @property
    def scope(self) -> str | None:
        """The tenant every query is limited to; None means all tenants (admins)."""
        return None if self.user.is_admin else self.user.tenant

    @property
    def csrf(self) -> str:
        return self.session.csrf


Handler = Callable[[Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

# What a page cannot do without: the database, and Redis when the limiter lives there.
_BACKEND_ERRORS = (DBAPIError, DatabaseUnavailable, RedisError, OSError, TimeoutError)


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard  # type: ignore[no-any-return]


def current_session(request: Request) -> Session | None:
    return dashboard_of(request).codec.loads(request.cookies.get(COOKIE_NAME))


def set_session(response: Response, request: Request, session: Session) -> None:
    dash = dashboard_of(request)
    response.set_cookie(
        COOKIE_NAME,
        dash.codec.dumps(session),
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=dash.secure_cookies,
    )


def not_found(api: bool = False) -> Response:
    """The answer for anything outside the viewer's scope: it does not exist for them."""
    if api:
        return JSONResponse({"error": "not found"}, status_code=404)
    return PlainTextResponse("Not found", status_code=404)


async def csrf_ok(request: Request, session: Session) -> bool:
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    return token is not None and hmac.compare_digest(token.encode(), session.csrf.encode())


def backend_errors_as_503(api: bool = False) -> Callable[[Endpoint], Endpoint]:
    """A page whose database is down says so (503, one line) instead of a stack trace."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except _BACKEND_ERRORS as exc:
                log.warning("dashboard %s: storage unavailable: %s", request.url.path, exc)
                message = "The database is unavailable; try again shortly."
                if api:
                    return JSONResponse({"error": message}, status_code=503)
                return PlainTextResponse(message, status_code=503)

        return guarded

    return wrap


def signed_in(*, admin: bool = False, api: bool = False) -> Callable[[Handler], Callable]:
    """Wrap a handler: sign-in required, POSTs need the session's CSRF token, ``admin``
    pages are 404 to staff (they are not told such a page exists)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @backend_errors_as_503(api)
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            dash = dashboard_of(request)
            session = current_session(request)
            user = None
            if session is not None and session.user_id is not None:
                user = await dash.users.get(session.user_id)
            if session is None or user is None:
                if api:
                    return JSONResponse({"error": "sign in first"}, status_code=401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if admin and not user.is_admin:
                return not_found(api)
            if request.method == "POST" and not await csrf_ok(request, session):
                return PlainTextResponse("Missing or wrong CSRF token", status_code=403)
            viewer = Viewer(user, session, await _brand(dash, user), await _standing(dash, user))
            return await handler(request, viewer)

        return endpoint

    return wrap


async def _standing(dash: Dashboard, user: User) -> Standing | None:
    if user.tenant is None or dash.billing is None:
        return None
    return await dash.billing.standing(user.tenant)


async def _brand(dash: Dashboard, user: User) -> Brand:
    if user.tenant is None:
        return PLATFORM
    try:
        tenant = await dash.tenants.get(user.tenant)
    except UnknownTenant:
        return PLATFORM
    return Brand.of(tenant.name, tenant.brand_color, tenant.logo_url)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" and "https://…" would leave it.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/calls"
    return target


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@backend_errors_as_503()
async def login_page(request: Request) -> Response:
    dash = dashboard_of(request)
    session = current_session(request)
    if request.method == "GET":
        if session is None:
            session = Session()
        response = dash.render(
            "login.html",
            request,
            brand=PLATFORM,
            csrf=session.csrf,
            next=_safe_next(request.query_params.get("next")),
            error=None,
        )
        set_session(response, request, session)
        return response

    form = await request.form()
    if session is None or not await csrf_ok(request, session):
        return PlainTextResponse(
            "Missing or wrong CSRF token (reload the sign-in page)", status_code=403
        )
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    address = _client_address(request)

    def again(message: str, status: int) -> Response:
        return dash.render(
            "login.html",
            request,
            status_code=status,
            brand=PLATFORM,
            csrf=session.csrf,
            next=target,
            error=message,
            email=email,
        )

    if not email or not password:
        return again("Enter your email and password.", 400)
    if await dash.limiter.blocked(address, email):
        return again("Too many failed attempts. Try again in 15 minutes.", 429)
    user = await dash.users.authenticate(email, password)
    if user is None:
        await dash.limiter.failed(address, email)
        return again("Wrong email or password.", 401)
    await dash.limiter.succeeded(address, email)
    # A fresh session (new CSRF token) at sign-in: a token planted before it is worthless.
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, Session(user_id=user.id))
    return response


async def logout(request: Request) -> Response:
    session = current_session(request)
    if session is None or not await csrf_ok(request, session):
        return PlainTextResponse("Missing or wrong CSRF token", status_code=403)
    response = RedirectResponse("/login", status_code=303)
    set_session(response, request, Session())
    return response
