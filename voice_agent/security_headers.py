"""Security headers on every HTTP response: a strict Content-Security-Policy (no inline or
foreign scripts, no framing), no MIME sniffing, a same-origin referrer, and HSTS when the
public URL is https (behind TLS; never on plain http, where it would lock out local use).

Plain ASGI: websockets pass straight through, so the media stream pays nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The pages load their scripts and styles from /dashboard-static; the templates carry a
#: few inline style attributes (brand colour, timeline bars), never inline scripts. Logos
#: are https URLs a tenant sets. The live view reads server-sent events from this origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: data:; media-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    __slots__ = ("_app", "_headers")

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self._app = app
        headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if hsts:
            headers.append((b"strict-transport-security", HSTS.encode()))
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self._headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self._app(scope, receive, send_with_headers)
