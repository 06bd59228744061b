"""The Standard Webhooks secret: ``whsec_`` followed by base64 of the signing key."""

from __future__ import annotations

import base64
import binascii

PREFIX = "whsec_"
#: The scheme asks for 24 to 64 bytes of key; fewer makes a guessable HMAC.
MIN_KEY_BYTES = 24


def check_secret(value: str) -> bytes:
    """The key inside ``value``; ValueError saying what is wrong (never echoing it)."""
    if not value.startswith(PREFIX):
        raise ValueError("must be whsec_ followed by base64 (the Standard Webhooks format)")
    body = value[len(PREFIX) :]
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after whsec_ is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key must be at least {MIN_KEY_BYTES} bytes (base64 after whsec_)")
    return key


def new_secret() -> str:
    """A fresh secret in the scheme's format (for docs and tests)."""
    import secrets

    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def masked(value: str | None) -> str:
    """How a stored secret is shown back: its prefix and last four characters only."""
    if not value:
        return ""
    return f"{PREFIX}…{value[-4:]}"
