"""The dashboard's session cookie: a small payload, HMAC-SHA256 signed, with an expiry.

Signed, not encrypted: it holds a user id and the CSRF token only, nothing secret from the
user who carries it. The standard library's hmac and a constant-time compare do the work
a dependency would (Starlette's SessionMiddleware needs itsdangerous, not in our stack).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

COOKIE_NAME = "va_session"
MAX_AGE_S = 12 * 3600
_SECRET_FILE = "session_secret"


@dataclass(slots=True)
class Session:
    user_id: int | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires_at: float = field(default_factory=lambda: time.time() + MAX_AGE_S)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("SESSION_SECRET: must be at least 16 characters")
        self._key = hashlib.sha256(b"voice-agent dashboard session\0" + secret).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        payload: dict[str, Any] = {"u": session.user_id, "c": session.csrf, "e": session.expires_at}
        body = _b64(orjson.dumps(payload))
        return f"{body}.{self._sign(body)}"

    def loads(self, cookie: str | None) -> Session | None:
        """The session, or None when the cookie is missing, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = orjson.loads(_unb64(body))
            session = Session(
                user_id=payload["u"], csrf=str(payload["c"]), expires_at=float(payload["e"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.user_id is not None and not isinstance(session.user_id, int):
            return None
        return None if session.expired else session


def load_secret(configured: str | None, data_dir: str) -> bytes:
    """SESSION_SECRET when set; else the one stored under DATA_DIR, made on first start.

    Every worker must sign with the same key, so the first to start writes it (0600) and the
    others read that file: created under a temporary name, then linked into place, which
    fails for all but one writer."""
    if configured:
        return configured.encode()
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _SECRET_FILE
    if not path.exists():
        temporary = directory / f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another worker won; use its secret
        finally:
            temporary.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 16:
        raise ValueError(f"SESSION_SECRET: the stored secret in {path} is too short")
    return secret.encode()
