"""The OpenAPI document covers every route, and schemathesis fuzzes the real app from it.

The app runs on loopback (SQLite, the OpenAI stand-in) in a thread of its own, because
schemathesis drives it synchronously. Twilio signatures are off for this run so the fuzzed
bodies reach the handlers (signatures have their own tests); the lead secret is sent; the
dashboard routes are fuzzed both signed out and signed in as the admin. The checks: never
a 5xx, never a Python traceback in a body,.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from starlette.routing import Mount, Route, WebSocketRoute

from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.conftest import TWILIO_TOKEN
from tests.dashboard.conftest import ADMIN, csrf_of, seed
from tests.dashboard.seed import PASSWORD, stereo_wav
from voice_agent.app import create_app
from voice_agent.demo import free_port, running_server
from voice_agent.openapi import openapi_document
from voice_agent.settings import Settings, load_settings

LEAD_SECRET = "lead-secret-for-fuzzing-0123456789"
_CONVERTOR = re.compile(r"{([^}:]+):[^}]+}")


def _http_routes(routes: list, prefix: str = "") -> set[tuple[str, str]]:  # type: ignore[type-arg]
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route):
            path = _CONVERTOR.sub(r"{\1}", prefix + route.path)
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method.lower(), path))
        elif isinstance(route, Mount) and route.path != "/dashboard-static":
            found |= _http_routes(list(route.routes), prefix + route.path)
        elif not isinstance(route, Mount | WebSocketRoute):
            raise AssertionError(f"unknown kind of route {route!r}")
    return found


def test_every_route_is_in_the_document(tmp_path: Path) -> None:
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    routes = _http_routes(app.routes)
    documented = {
        (method, path) for path, item in openapi_document()["paths"].items() for method in item
    }
    missing = sorted(routes - documented)
    assert not missing, f"routes missing from voice_agent/openapi.py: {missing}"
    stale = sorted(documented - routes)
    assert not stale, f"documented in voice_agent/openapi.py but not routed: {stale}"


# --- the app on loopback, in a thread ------------------------------------------------------


@dataclass
class Hosted:
    base_url: str
    admin_cookies: dict[str, str]


def _settings(tmp: Path, standin: StandinOpenAI) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp}/voice_agent.db",
        public_base_url=f"http://127.0.0.1:{free_port()}",
        twilio_auth_token=TWILIO_TOKEN,
        twilio_validate=False,
        data_dir=str(tmp),
        openai_api_key=standin.api_key,
        openai_base_url=standin.base_url,
        agent_pipeline="cascade",
        fallback_offline_speech=False,  # the models are not what is fuzzed; seconds to load
        lead_webhook_secret=LEAD_SECRET,
        stripe_webhook_secret="whsec_fuzz",
    )


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    tmp = tmp_path_factory.mktemp("openapi")
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    box: list[object] = []

    async def serve() -> None:
        async with StandinOpenAI(Latency.none()) as standin:
            settings = _settings(tmp, standin)
            async with running_server(settings) as runtime:
                await seed(runtime, stereo_wav(tmp / "call.wav", seconds=2.0))
                box.append(settings.public_base_url)
                stop.append(asyncio.Event())
                ready.set()
                await stop[0].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the test below
            box.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="openapi-app", daemon=True)
    thread.start()
    assert ready.wait(60), "the app did not start"
    if isinstance(box[-1], BaseException):
        raise box[-1]
    base_url = str(box[0])
    loop_stop = stop[0]
    with httpx.Client(base_url=base_url, follow_redirects=False) as http:
        page = http.get("/login")
        signed = http.post(
            "/login",
            data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        )
        assert signed.status_code == 303, signed.text
        cookies = dict(http.cookies)
    try:
        yield Hosted(base_url, cookies)
    finally:
        # The loop is the thread's: set its event from inside it.
        for task_loop in [getattr(loop_stop, "_loop", None)]:
            if task_loop is not None:
                task_loop.call_soon_threadsafe(loop_stop.set)
        thread.join(30)


def test_the_document_is_served(hosted: Hosted) -> None:
    response = httpx.get(hosted.base_url + "/openapi.json")
    assert response.status_code == 200
    assert response.json()["paths"].keys() == openapi_document()["paths"].keys()


# --- schemathesis ---------------------------------------------------------------------------

schema = schemathesis.openapi.from_dict(openapi_document())
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
statuses: Counter[int] = Counter()


def _no_traceback(response: requests.Response) -> None:
    assert not _TRACEBACK.search(response.text), f"stack trace in the body: {response.text[:500]}"


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_get_4xx_never_5xx(case: schemathesis.Case, hosted: Hosted) -> None:
    if case.path == "/api/live/events":
        pytest.skip("a stream that stays open: tested in tests/dashboard/test_live.py")
    headers = {"Authorization": f"Bearer {LEAD_SECRET}"} if case.path == "/webhooks/lead" else {}
    for cookies in ({}, hosted.admin_cookies):
        with requests.Session() as session:
            session.cookies.update(cookies)
            response = case.call(
                base_url=hosted.base_url,
                session=session,
                headers=headers,
                allow_redirects=False,
                timeout=10,
            )
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])
        _no_traceback(response)


def test_the_fuzzing_reached_the_handlers() -> None:
    """Runs after the fuzzing (same module, later): not everything was turned away at the
    door, and what was refused was refused with a 4xx."""
    print(f"schemathesis: {sum(statuses.values())} requests, by status {dict(statuses)}")
    assert sum(statuses.values()) > 500
    assert sum(n for code, n in statuses.items() if code < 300) > 50
    assert statuses[400] + statuses[404] > 50
    assert not [code for code in statuses if code >= 500]
