from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from starlette.datastructures import FormData

from voice_agent.telephony.signature import TwilioSignature

# Worked vectors from integrations.md §2.5 (Auth Token "12345").
TOKEN = "12345"
FORM = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
FORM_SIGNATURE = "NGAgWNhdnsLF8j385frvrQoi9sg="
WS_SIGNATURE = "XFfwGS2Ev7f9qAP9MmRoMS7C724="


def sign(url: str, pairs: list[tuple[str, str]], token: str = TOKEN) -> str:
    """The §2.5 algorithm written out independently of the twilio package."""
    data = url
    for name in sorted({name for name, _ in pairs}):
        for value in sorted({v for n, v in pairs if n == name}):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@pytest.fixture
def checker() -> TwilioSignature:
    return TwilioSignature(TOKEN, "https://example.com")


def test_independent_signer_reproduces_the_vectors() -> None:
    assert sign("https://example.com/myapp", list(FORM.items())) == FORM_SIGNATURE
    assert sign("wss://example.com/media-stream", []) == WS_SIGNATURE


def test_form_post_vector(checker: TwilioSignature) -> None:
    assert checker.http_url("/myapp") == "https://example.com/myapp"
    assert checker.check_http("/myapp", FORM, FORM_SIGNATURE)


def test_form_post_as_pairs_and_starlette_form(checker: TwilioSignature) -> None:
    assert checker.check_http("/myapp", list(FORM.items()), FORM_SIGNATURE)
    assert checker.check_http("/myapp", FormData(list(FORM.items())), FORM_SIGNATURE)


def test_websocket_vector(checker: TwilioSignature) -> None:
    assert checker.ws_url("/media-stream") == "wss://example.com/media-stream"
    assert checker.check_websocket("/media-stream", WS_SIGNATURE)


@pytest.mark.parametrize("signature", [None, "", "NGAgWNhdnsLF8j385frvrQoi9sh=", "garbage"])
def test_wrong_or_missing_signature(checker: TwilioSignature, signature: str | None) -> None:
    assert not checker.check_http("/myapp", FORM, signature)
    assert not checker.check_websocket("/media-stream", signature)


def test_wrong_token() -> None:
    other = TwilioSignature("54321", "https://example.com")
    assert not other.check_http("/myapp", FORM, FORM_SIGNATURE)
    assert not other.check_websocket("/media-stream", WS_SIGNATURE)


def test_tampered_missing_or_extra_params(checker: TwilioSignature) -> None:
    assert not checker.check_http("/myapp", {**FORM, "Digits": "9999"}, FORM_SIGNATURE)
    assert not checker.check_http("/myapp", {**FORM, "Extra": ""}, FORM_SIGNATURE)
    trimmed = {k: v for k, v in FORM.items() if k != "Caller"}
    assert not checker.check_http("/myapp", trimmed, FORM_SIGNATURE)


def test_wrong_path_or_scheme(checker: TwilioSignature) -> None:
    assert not checker.check_http("/other", FORM, FORM_SIGNATURE)
    assert not checker.check_websocket("/media-stream2", WS_SIGNATURE)
    # The upgrade is signed over wss://, so an https-signed value must not pass.
    https_signed = sign("https://example.com/media-stream", [])
    assert not checker.check_websocket("/media-stream", https_signed)


@pytest.mark.parametrize(
    "base", ["https://example.com/", "https://example.com:443", "https://example.com:443/"]
)
def test_trailing_slash_and_default_port_variants(base: str) -> None:
    checker = TwilioSignature(TOKEN, base)
    assert checker.check_http("/myapp", FORM, FORM_SIGNATURE)


def test_twilio_signing_with_explicit_default_port(checker: TwilioSignature) -> None:
    # §2.5 step 6: the URL with the default port added validates too.
    signature = sign("https://example.com:443/myapp", list(FORM.items()))
    assert checker.check_http("/myapp", FORM, signature)


def test_non_default_port_is_part_of_the_urls() -> None:
    checker = TwilioSignature(TOKEN, "http://127.0.0.1:8080")
    assert checker.http_url("/twilio/voice") == "http://127.0.0.1:8080/twilio/voice"
    assert checker.ws_url("/twilio/media") == "wss://127.0.0.1:8080/twilio/media"
    signature = sign("wss://127.0.0.1:8080/twilio/media", [])
    assert checker.check_websocket("/twilio/media", signature)
    # The validator also accepts the URL with the port removed (§2.5 step 6)...
    assert checker.check_websocket("/twilio/media", sign("wss://127.0.0.1/twilio/media", []))
    # ...but never a different port.
    assert not checker.check_websocket(
        "/twilio/media", sign("wss://127.0.0.1:9090/twilio/media", [])
    )


def test_base_path_prefix_and_relative_path() -> None:
    checker = TwilioSignature(TOKEN, "https://example.com/agent/")
    assert checker.http_url("twilio/voice") == "https://example.com/agent/twilio/voice"
    assert checker.ws_url("/twilio/media") == "wss://example.com/agent/twilio/media"


def test_query_string_is_signed_raw(checker: TwilioSignature) -> None:
    path = "/twilio/status?tenant=a%20b&x=1"
    signature = sign("https://example.com" + path, list(FORM.items()))
    assert checker.check_http(path, FORM, signature)
    assert not checker.check_http("/twilio/status?tenant=a+b&x=1", FORM, signature)


def test_repeated_field_names(checker: TwilioSignature) -> None:
    pairs = [
        ("CallSid", "CA1"),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackEvent", "answered"),
    ]
    signature = sign("https://example.com/cb", pairs)
    assert checker.check_http("/cb", pairs, signature)
    assert checker.check_http("/cb", FormData(pairs), signature)
    assert not checker.check_http("/cb", pairs[:2], signature)


def test_empty_form(checker: TwilioSignature) -> None:
    assert checker.check_http("/cb", {}, sign("https://example.com/cb", []))


@pytest.mark.parametrize(
    ("token", "base"),
    [
        ("", "https://example.com"),
        (TOKEN, "example.com"),
        (TOKEN, "ftp://example.com"),
        (TOKEN, "wss://example.com"),
        (TOKEN, "https://example.com/?x=1"),
        (TOKEN, "https://example.com/#frag"),
    ],
)
def test_bad_configuration(token: str, base: str) -> None:
    with pytest.raises(ValueError):
        TwilioSignature(token, base)
