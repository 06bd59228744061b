"""`X-Twilio-Signature` checks for webhooks and the Media Streams upgrade (integrations.md §2.5).

URLs are rebuilt from the configured public base URL, never from request headers:
TLS-terminating proxies rewrite scheme, host and port, and a signature over the rewritten
URL never matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

__all__ = ["FormParams", "TwilioSignature"]

FormParams = Mapping[str, str] | Iterable[tuple[str, str]]


class _MultiParams:
    """Form fields with repeated names, in the shape RequestValidator understands.

    The validator iterates names and asks ``getall(name)`` for every value, so a repeated
    field (e.g. several ``StatusCallbackEvent``) is signed the way Twilio signs it.
    """

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def getall(self, name: str) -> list[str]:
        return self._values[name]


def _pairs(params: FormParams) -> Iterable[tuple[str, str]]:
    multi_items = getattr(params, "multi_items", None)  # Starlette FormData / QueryParams
    if callable(multi_items):
        return multi_items()
    if isinstance(params, Mapping):
        return params.items()
    return params


def stream_url(public_base_url: str, path: str) -> str:
    """The ``wss://`` URL for ``path`` on the public origin: what ``<Stream url>`` names and
    what Twilio signs the websocket upgrade over (TLS ends in front of us)."""
    parts = urlsplit(public_base_url)
    # A deployment behind a path prefix (https://host/agent) keeps the prefix.
    prefix = parts.path.rstrip("/")
    return f"wss://{parts.netloc}{prefix}{path if path.startswith('/') else '/' + path}"


class TwilioSignature:
    """Validates Twilio's HMAC-SHA1 request signatures against our public URLs."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        if not auth_token:
            # An empty HMAC key makes every signature forgeable.
            raise ValueError("auth_token must not be empty")
        parts = urlsplit(public_base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"public_base_url must be an absolute http(s) URL: {public_base_url!r}"
            )
        if parts.query or parts.fragment:
            raise ValueError("public_base_url must not carry a query string or fragment")
        self._validator = RequestValidator(auth_token)
        self._netloc = parts.netloc
        # A deployment behind a path prefix (https://host/agent) keeps the prefix.
        self._prefix = parts.path.rstrip("/")
        self._http_base = f"{parts.scheme}://{parts.netloc}{self._prefix}"
        self._public_base_url = public_base_url

    @staticmethod
    def _path(path: str) -> str:
        return path if path.startswith("/") else "/" + path

    def http_url(self, path: str) -> str:
        """The URL Twilio requests for ``path`` (may include the raw query string)."""
        return self._http_base + self._path(path)

    def ws_url(self, path: str) -> str:
        """The ``wss://`` URL to put in ``<Stream url>``; Twilio signs the upgrade over it."""
        return stream_url(self._public_base_url, path)

    def check_http(self, path: str, params: FormParams, signature: str | None) -> bool:
        """Check a webhook: ``path`` as requested (with raw query), the full form body."""
        if not signature:
            return False
        return self._validator.validate(
            self.http_url(path), _MultiParams(_pairs(params)), signature
        )

    def check_websocket(self, path: str, signature: str | None) -> bool:
        """Check the Media Streams upgrade: the wss URL, no parameters."""
        if not signature:
            return False
        return self._validator.validate(self.ws_url(path), {}, signature)
