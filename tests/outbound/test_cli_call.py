"""`voice-agent call +E164`: the same outbound call, placed by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from tests.outbound.conftest import FROM_NUMBER, LEAD_PHONE
from voice_agent.cli import main
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.scheduled_calls import ScheduledCallRepository


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, twilio: TwilioRestStandin, make_settings: Callable[..., Any]
) -> Settings:
    settings: Settings = make_settings()
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    return settings


async def _run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_a_call_is_placed_through_the_twilio_api(
    cli_env: Settings, twilio: TwilioRestStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run("call", "(212) 555-0134", "--first-name", "Maria") == 0

    call_sid = capsys.readouterr().out.strip()
    call = twilio.calls[call_sid]
    assert call.to == LEAD_PHONE and call.from_ == FROM_NUMBER
    form = call.create_form
    assert form["AsyncAmd"] == "true"
    voice = urlsplit(form["Url"])
    assert f"{voice.scheme}://{voice.netloc}{voice.path}" == cli_env.public_base_url + (
        "/twilio/voice"
    )
    scheduled_id = int(dict(parse_qsl(voice.query))["scheduled"])
    database = await Database.connect(cli_env.database_url)
    try:
        scheduled = await ScheduledCallRepository(database).get(scheduled_id)
    finally:
        await database.dispose()
    assert scheduled is not None
    assert (scheduled.reason, scheduled.status, scheduled.call_sid) == (
        "manual",
        "placed",
        call_sid,
    )
    assert scheduled.context == {"first_name": "Maria"}


async def test_bad_arguments_exit_2_naming_them(
    cli_env: Settings, twilio: TwilioRestStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run("call", "12") == 2
    assert capsys.readouterr().err.startswith("voice-agent: NUMBER:")
    assert await _run("call", LEAD_PHONE, "--tenant", "nobody") == 2
    assert "--tenant: no tenant 'nobody'" in capsys.readouterr().err
    assert twilio.calls == {}


async def test_an_opted_out_number_is_not_called(
    cli_env: Settings, twilio: TwilioRestStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run("call", "--queue", LEAD_PHONE) == 0  # creates the database and tenant
    database = await Database.connect(cli_env.database_url)
    try:
        await OptOutRepository(database).record(
            "default", LEAD_PHONE, opted_out=True, keyword="STOP"
        )
    finally:
        await database.dispose()
    capsys.readouterr()
    assert await _run("call", LEAD_PHONE) == 1
    assert "opted out" in capsys.readouterr().err
    assert twilio.calls == {}


async def test_missing_twilio_settings_exit_2(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TWILIO_FROM_NUMBER")
    assert await _run("call", LEAD_PHONE) == 2
    assert "TWILIO_FROM_NUMBER" in capsys.readouterr().err


async def test_queued_calls_are_placed_by_the_servers_dialer(
    serve: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    twilio: TwilioRestStandin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.app.twilio_side import until

    async with serve() as server:
        monkeypatch.setenv("DATABASE_URL", server.settings.database_url)
        assert await _run("call", "--queue", LEAD_PHONE, "--first-name", "Ann") == 0
        assert "queued as scheduled call" in capsys.readouterr().out
        # Due at the real time the CLI stamped it with; manual calls ignore calling hours.
        server.clock.now = datetime.now(UTC) + timedelta(minutes=1)
        await until(lambda: len(server.creates()) == 1, what="the server's dialer to place it")
    assert server.creates()[0].form["To"] == LEAD_PHONE
