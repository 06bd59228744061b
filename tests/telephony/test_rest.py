from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from loadtest.standins.twilio_rest import RecordedRequest, TwilioRestStandin
from voice_agent.telephony.rest import TwilioRest, TwilioRestError
from voice_agent.telephony.twiml import dial

from .conftest import ACCOUNT_SID, AUTH_TOKEN

CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"
UNKNOWN_SID = "CA" + "9" * 32


@pytest.fixture
async def rest(twilio_standin: TwilioRestStandin) -> AsyncIterator[TwilioRest]:
    async with TwilioRest(ACCOUNT_SID, AUTH_TOKEN, twilio_standin.base_url) as client:
        yield client


async def test_create_call(rest: TwilioRest, twilio_standin: TwilioRestStandin) -> None:
    sid = await rest.create_call(
        "+15557654321",
        "+15550001111",
        "https://agent.example.com/twilio/voice",
        status_callback="https://agent.example.com/twilio/status",
    )
    assert sid.startswith("CA")
    assert len(sid) == 34
    [request] = twilio_standin.requests
    assert request.method == "POST"
    assert request.path == CALLS_PATH + ".json"
    assert request.authorized
    assert request.status == 201
    assert request.form == {
        "To": "+15557654321",
        "From": "+15550001111",
        "Url": "https://agent.example.com/twilio/voice",
        "StatusCallback": "https://agent.example.com/twilio/status",
    }
    call = twilio_standin.calls[sid]
    assert (call.status, call.direction) == ("queued", "outbound-api")


async def test_create_call_passes_extra_parameters(
    rest: TwilioRest, twilio_standin: TwilioRestStandin
) -> None:
    twiml = "<Response><Say>hi</Say></Response>"
    sid = await rest.create_call(
        "+15557654321",
        "+15550001111",
        None,
        twiml=twiml,
        status_callback_event=["answered", "completed"],
        machine_detection="Enable",
        async_amd="true",
    )
    [request] = twilio_standin.requests
    assert "Url" not in request.form
    assert request.form["Twiml"] == twiml
    assert request.form["MachineDetection"] == "Enable"
    assert request.form["AsyncAmd"] == "true"
    events = [value for name, value in request.params if name == "StatusCallbackEvent"]
    assert events == ["answered", "completed"]
    assert twilio_standin.calls[sid].twiml == twiml


async def test_create_call_rejected(rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError) as info:
        await rest.create_call("+15557654321", "+15550001111", None)
    assert (info.value.status, info.value.code) == (400, 21205)


async def test_create_call_needs_numbers(
    rest: TwilioRest, twilio_standin: TwilioRestStandin
) -> None:
    with pytest.raises(ValueError):
        await rest.create_call("", "+15550001111", "https://a/v")
    with pytest.raises(ValueError):
        await rest.create_call("+15550001111", "", "https://a/v")
    assert twilio_standin.requests == []


async def test_hangup(rest: TwilioRest, twilio_standin: TwilioRestStandin) -> None:
    sid = await rest.create_call("+15557654321", "+15550001111", "https://a/v")
    await rest.hangup(sid)
    request = twilio_standin.requests[-1]
    assert request.path == f"{CALLS_PATH}/{sid}.json"
    assert request.call_sid == sid
    assert request.form == {"Status": "completed"}
    assert request.status == 200
    assert twilio_standin.calls[sid].status == "completed"


async def test_hangup_of_unknown_or_ended_call_is_success(
    rest: TwilioRest, twilio_standin: TwilioRestStandin
) -> None:
    await rest.hangup(UNKNOWN_SID)
    sid = await rest.create_call("+15557654321", "+15550001111", "https://a/v")
    await rest.hangup(sid)
    await rest.hangup(sid)
    assert [r.status for r in twilio_standin.requests] == [404, 201, 200, 404]


async def test_hangup_of_a_registered_inbound_call(
    rest: TwilioRest, twilio_standin: TwilioRestStandin
) -> None:
    call = twilio_standin.register_call("CA" + "1" * 32, to="+15550001111")
    await rest.hangup(call.sid)
    assert call.status == "completed"
    assert call.history == [{"Status": "completed"}]


async def test_update_twiml_with_dial(rest: TwilioRest, twilio_standin: TwilioRestStandin) -> None:
    call = twilio_standin.register_call("CA" + "2" * 32)
    twiml = dial("+15559998888", caller_id="+15550001111")
    await rest.update_twiml(call.sid, twiml)
    [request] = twilio_standin.requests
    assert request.form == {"Twiml": twiml}
    assert call.twiml == twiml
    assert call.status == "in-progress"


async def test_update_twiml_of_unknown_call_fails(rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError) as info:
        await rest.update_twiml(UNKNOWN_SID, dial("+15559998888"))
    assert (info.value.status, info.value.code) == (404, 20404)
    assert "not found" in info.value.message


async def test_update_twiml_needs_twiml(rest: TwilioRest) -> None:
    with pytest.raises(ValueError):
        await rest.update_twiml(UNKNOWN_SID, "")


@pytest.mark.parametrize("sid", ["", "../Calls", "CA1/../../x", "CA 1", "C" * 65])
async def test_bad_call_sids_never_reach_the_network(
    rest: TwilioRest, twilio_standin: TwilioRestStandin, sid: str
) -> None:
    with pytest.raises(ValueError):
        await rest.hangup(sid)
    with pytest.raises(ValueError):
        await rest.update_twiml(sid, "<Response/>")
    assert twilio_standin.requests == []


async def test_bad_credentials(twilio_standin: TwilioRestStandin) -> None:
    async with TwilioRest(ACCOUNT_SID, "wrong-token", twilio_standin.base_url) as client:
        with pytest.raises(TwilioRestError) as info:
            await client.create_call("+15557654321", "+15550001111", "https://a/v")
        assert (info.value.status, info.value.code) == (401, 20003)
        # A refused hangup is not "already ended": it must surface.
        with pytest.raises(TwilioRestError) as info:
            await client.hangup(UNKNOWN_SID)
        assert info.value.status == 401
    assert not any(r.authorized for r in twilio_standin.requests)


async def test_other_accounts_credentials_are_refused(
    twilio_standin: TwilioRestStandin,
) -> None:
    other_sid = "AC" + "b2" * 16
    async with TwilioRest(other_sid, AUTH_TOKEN, twilio_standin.base_url) as client:
        with pytest.raises(TwilioRestError) as info:
            await client.create_call("+15557654321", "+15550001111", "https://a/v")
    # Basic auth carries the other account's SID, so Twilio refuses it outright.
    assert info.value.status == 401


async def test_server_error_surfaces_from_every_method(
    rest: TwilioRest, twilio_standin: TwilioRestStandin
) -> None:
    twilio_standin.inject_error(503, 20500, "Service unavailable", times=3)
    with pytest.raises(TwilioRestError) as info:
        await rest.hangup(UNKNOWN_SID)
    assert (info.value.status, info.value.code) == (503, 20500)
    with pytest.raises(TwilioRestError):
        await rest.update_twiml(UNKNOWN_SID, "<Response/>")
    with pytest.raises(TwilioRestError):
        await rest.create_call("+15557654321", "+15550001111", "https://a/v")
    # Injected errors are used up; the next request is handled normally.
    await rest.create_call("+15557654321", "+15550001111", "https://a/v")


async def test_timeout(twilio_standin: TwilioRestStandin) -> None:
    twilio_standin.response_delay_s = 0.5
    async with TwilioRest(ACCOUNT_SID, AUTH_TOKEN, twilio_standin.base_url, timeout=0.1) as rest:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TwilioRestError) as info:
            await rest.hangup(UNKNOWN_SID)
        assert loop.time() - started < 0.4
    assert info.value.status == 0
    assert info.value.code is None
    assert "0.1" in info.value.message


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with TwilioRest(ACCOUNT_SID, AUTH_TOKEN, f"http://127.0.0.1:{port}") as rest:
        with pytest.raises(TwilioRestError) as info:
            await rest.hangup(UNKNOWN_SID)
    assert info.value.status == 0


async def test_event_loop_stays_free_during_a_request(twilio_standin: TwilioRestStandin) -> None:
    twilio_standin.response_delay_s = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with TwilioRest(ACCOUNT_SID, AUTH_TOKEN, twilio_standin.base_url) as rest:
        task = asyncio.create_task(ticker())
        try:
            await rest.hangup(UNKNOWN_SID)
        finally:
            task.cancel()
    assert ticks >= 10


async def test_edge_and_region_environment_do_not_break_the_override(
    twilio_standin: TwilioRestStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    async with TwilioRest(ACCOUNT_SID, AUTH_TOKEN, twilio_standin.base_url + "/") as rest:
        await rest.hangup(UNKNOWN_SID)
    assert len(twilio_standin.requests) == 1


async def test_reusable_after_close(twilio_standin: TwilioRestStandin) -> None:
    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, twilio_standin.base_url)
    await rest.hangup(UNKNOWN_SID)
    await rest.aclose()
    await rest.aclose()
    await rest.hangup(UNKNOWN_SID)
    await rest.aclose()
    assert len(twilio_standin.requests) == 2


@pytest.mark.parametrize(
    ("sid", "token", "timeout"), [("", "t", 1.0), ("AC1", "", 1.0), ("AC1", "t", 0)]
)
def test_bad_configuration(sid: str, token: str, timeout: float) -> None:
    with pytest.raises(ValueError):
        TwilioRest(sid, token, timeout=timeout)


def test_default_base_url_is_twilio() -> None:
    rest = TwilioRest(ACCOUNT_SID, AUTH_TOKEN)
    assert rest.account_sid == ACCOUNT_SID


# --- the stand-in itself ---------------------------------------------------------------


async def test_standin_callbacks(rest: TwilioRest, twilio_standin: TwilioRestStandin) -> None:
    seen: list[tuple[str, int]] = []
    hung_up = asyncio.Event()

    def on_sync(request: RecordedRequest) -> None:
        seen.append((request.path, request.status))

    async def on_async(request: RecordedRequest) -> None:
        if request.form.get("Status") == "completed":
            hung_up.set()

    twilio_standin.on_request(on_sync)
    twilio_standin.on_request(on_async)
    call = twilio_standin.register_call("CA" + "3" * 32)
    await rest.hangup(call.sid)
    assert hung_up.is_set()
    assert seen == [(f"{CALLS_PATH}/{call.sid}.json", 200)]
    assert twilio_standin.requests_for(call.sid) == twilio_standin.requests


async def test_standin_error_body_shape(twilio_standin: TwilioRestStandin) -> None:
    async with httpx.AsyncClient(base_url=twilio_standin.base_url) as http:
        response = await http.post(CALLS_PATH + ".json", data={"To": "+1"})
        assert response.status_code == 401
        assert response.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
        fetched = await http.get(f"{CALLS_PATH}/{UNKNOWN_SID}.json", auth=(ACCOUNT_SID, AUTH_TOKEN))
        assert (fetched.status_code, fetched.json()["code"]) == (404, 20404)
        bad_status = await http.post(
            f"{CALLS_PATH}/{twilio_standin.register_call(UNKNOWN_SID).sid}.json",
            data={"Status": "ringing"},
            auth=(ACCOUNT_SID, AUTH_TOKEN),
        )
        assert (bad_status.status_code, bad_status.json()["code"]) == (400, 21218)
        wrong_account = await http.post(
            "/2010-04-01/Accounts/AC" + "f" * 32 + "/Calls.json",
            data={"To": "+1", "From": "+2", "Url": "https://a/v"},
            auth=(ACCOUNT_SID, AUTH_TOKEN),
        )
        assert wrong_account.status_code == 404
    assert [r.authorized for r in twilio_standin.requests] == [False, True, True, True]


async def test_standin_lifecycle() -> None:
    standin = TwilioRestStandin()
    with pytest.raises(RuntimeError):
        _ = standin.base_url
    base_url = await standin.start()
    assert base_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        await standin.start()
    await standin.stop()
    await standin.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(base_url + "/")
