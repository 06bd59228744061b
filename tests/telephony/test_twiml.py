from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from voice_agent.telephony.twiml import connect_stream, dial, say_and_hangup, say_language

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def parse(document: str) -> ET.Element:
    assert document.startswith(DECLARATION)
    root = ET.fromstring(document.encode())
    assert root.tag == "Response"
    return root


def test_connect_stream_structure() -> None:
    document = connect_stream(
        "wss://agent.example.com/twilio/media",
        {"token": "tok-1", "caller": "+15551230000"},
        status_callback="https://agent.example.com/twilio/stream-status",
    )
    root = parse(document)
    [connect] = list(root)
    assert connect.tag == "Connect"
    assert connect.attrib == {}
    [stream] = list(connect)
    assert stream.tag == "Stream"
    assert stream.attrib == {
        "url": "wss://agent.example.com/twilio/media",
        "statusCallback": "https://agent.example.com/twilio/stream-status",
    }
    params = [(p.tag, p.attrib) for p in stream]
    assert params == [
        ("Parameter", {"name": "token", "value": "tok-1"}),
        ("Parameter", {"name": "caller", "value": "+15551230000"}),
    ]


def test_connect_stream_without_callback_or_parameters() -> None:
    stream = parse(connect_stream("wss://h/m", {})).find("Connect/Stream")
    assert stream is not None
    assert stream.attrib == {"url": "wss://h/m"}
    assert list(stream) == []


def test_connect_stream_escapes_values() -> None:
    value = "a&b<c>\"d'e"
    stream = parse(connect_stream("wss://h/m", {"name": value})).find("Connect/Stream")
    assert stream is not None
    [param] = list(stream)
    assert param.attrib["value"] == value


def test_connect_stream_relative_url_allowed() -> None:
    stream = parse(connect_stream("/twilio/media", {"t": "1"})).find("Connect/Stream")
    assert stream is not None
    assert stream.attrib["url"] == "/twilio/media"


@pytest.mark.parametrize(
    "url",
    [
        "wss://h/m?token=abc",
        "wss://h/m?",
        "wss://h/m#x",
        "https://h/m",
        "ws://h/m",
    ],
)
def test_connect_stream_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        connect_stream(url, {"t": "1"})


@pytest.mark.parametrize(
    "params",
    [
        {"token": "x" * 495},
        {"": "v"},
        {"token": 5},
    ],
)
def test_connect_stream_refuses_bad_parameters(params: dict) -> None:
    with pytest.raises(ValueError):
        connect_stream("wss://h/m", params)


def test_connect_stream_parameter_just_under_limit() -> None:
    stream = parse(connect_stream("wss://h/m", {"token": "x" * 494})).find("Connect/Stream")
    assert stream is not None
    assert len(stream[0].attrib["value"]) == 494


def test_say_and_hangup() -> None:
    root = parse(say_and_hangup("Sorry, we're closed. Goodbye & thanks."))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == "Sorry, we're closed. Goodbye & thanks."
    # Said as US English unless told otherwise: Twilio reads any text in the locale given.
    assert root[0].attrib == {"language": "en-US"}


def test_say_in_the_agents_language() -> None:
    root = parse(say_and_hangup("Lo siento, adiós.", language=say_language("es")))
    assert root[0].attrib == {"language": "es-ES"}


@pytest.mark.parametrize(
    ("code", "locale"),
    [
        ("en", "en-US"),
        ("es", "es-ES"),
        ("fr", "fr-FR"),
        ("pt", "pt-BR"),
        ("no", "nb-NO"),
        ("ES", "es-ES"),
        ("es-MX", "es-MX"),  # already a locale: kept
        ("sw", "en-US"),  # no Twilio locale listed: the default
        ("", "en-US"),
        (None, "en-US"),
    ],
)
def test_say_language(code: str | None, locale: str) -> None:
    assert say_language(code) == locale


def test_say_with_voice() -> None:
    root = parse(say_and_hangup("Hi", voice="Polly.Joanna", language="en-US"))
    assert root[0].attrib == {"voice": "Polly.Joanna", "language": "en-US"}


def test_dial() -> None:
    root = parse(dial("+15557654321", caller_id="+15550001111", timeout=30))
    [verb] = list(root)
    assert verb.tag == "Dial"
    assert verb.text == "+15557654321"
    assert verb.attrib == {"callerId": "+15550001111", "timeout": "30"}


def test_dial_defaults() -> None:
    [verb] = list(parse(dial("+15557654321")))
    assert verb.attrib == {"timeout": "20"}


@pytest.mark.parametrize(("number", "timeout"), [("", 20), ("+1555", 0), ("+1555", -5)])
def test_dial_refuses_bad_input(number: str, timeout: int) -> None:
    with pytest.raises(ValueError):
        dial(number, timeout=timeout)
