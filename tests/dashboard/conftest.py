"""A dashboard with two tenants, their staff, an admin and a few calls (one with a real
stereo recording), served in-process for httpx or on loopback for the browser."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from loadtest.fixtures import load_script
from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.calls.cascade_support import FixtureTranscriber, short_responder
from tests.dashboard.seed import (
    PASSWORD,
    SeedTurn,
    add_call,
    add_tenant,
    add_user,
    stereo_wav,
)
from voice_agent.app import create_app
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.database import Database

ADMIN = "admin@example.com"
ACME_STAFF = "staff@acme.test"
GLOBEX_STAFF = "staff@globex.test"
ACME_CALL = "CA" + "a" * 32
GLOBEX_CALL = "CA" + "b" * 32
#: The number inbound test calls dial to reach acme (``served_with_number``).
ACME_NUMBER = "+14155550142"
XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'

#: The acme call: five turns over a 12 s recording.
ACME_TURNS = [
    SeedTurn("agent", "Thanks for calling Acme Plumbing, how can I help?", 0.2, 2.3),
    SeedTurn("caller", "My kitchen sink is leaking under the cabinet.", 3.0, 2.5),
    SeedTurn("agent", "Sorry to hear that. When did it start?", 6.0, 1.8, total_ms=820.0),
    SeedTurn("caller", XSS, 8.2, 1.5),
    SeedTurn("agent", "I can send someone this afternoon", 10.0, 1.6, True, total_ms=640.0),
]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    app: Starlette
    runtime: Runtime
    settings: Settings
    recording: Path

    @property
    def db(self) -> Database:
        return self.runtime.database


#: ``await as_user(email)``: an httpx client signed in as that user.
AsUser = Callable[[str], Awaitable[httpx.AsyncClient]]


async def seed(runtime: Runtime, recording: Path) -> None:
    db = runtime.database
    await add_tenant(
        db,
        "acme",
        name="Acme Plumbing",
        brand_color="#ff6600",
        logo_url="https://cdn.example.com/acme.png",
    )
    await add_tenant(db, "globex", name="Globex Corp", brand_color="#00aa55")
    await add_user(db, ADMIN, "admin")
    await add_user(db, ACME_STAFF, "staff", "acme")
    await add_user(db, GLOBEX_STAFF, "staff", "globex")
    await add_call(
        db,
        ACME_CALL,
        "acme",
        ACME_TURNS,
        recording_path=str(recording),
        outcome="booked",
        summary="Leaking sink; visit booked.",
    )
    await add_call(
        db,
        GLOBEX_CALL,
        "globex",
        [SeedTurn("caller", "Globex secret merger plans", 0.5, 2.0)],
        recording_path=str(recording),
        outcome="info",
    )


@pytest.fixture
async def standin() -> AsyncIterator[StandinOpenAI]:
    """The OpenAI stand-in, with a "Whisper" that knows which fixture the caller said."""
    transcriber = FixtureTranscriber(load_script())
    async with StandinOpenAI(Latency.none(), transcriber=transcriber) as server:
        server.responder = short_responder
        yield server


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return stereo_wav(tmp_path / "acme-call.wav", seconds=12.0)


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[tuple[Starlette, Runtime]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.runtime


@pytest.fixture
async def site(cascade_settings: Callable[..., Settings], recording: Path) -> AsyncIterator[Site]:
    settings = cascade_settings()
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)
        yield Site(app, runtime, settings, recording)


@pytest.fixture
async def served(
    cascade_settings: Callable[..., Settings], recording: Path
) -> AsyncIterator[tuple[Settings, Runtime]]:
    """The seeded dashboard on a real loopback server: for browsers, websockets, webhooks."""
    settings = cascade_settings()
    async with running_server(settings) as runtime:
        await seed(runtime, recording)
        yield settings, runtime


@pytest.fixture
async def served_with_number(served: tuple[Settings, Runtime]) -> tuple[Settings, Runtime]:
    """``served``, with ACME_NUMBER routed to acme: inbound calls reach its agent."""
    await served[1].tenants.add_number("acme", ACME_NUMBER)
    return served


def client_for(app: Starlette, base_url: str = "http://testserver") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/calls",
        },
    )


@pytest.fixture
async def as_user(site: Site) -> AsyncIterator[AsUser]:
    clients: list[httpx.AsyncClient] = []

    async def make(email: str) -> httpx.AsyncClient:
        client = client_for(site.app)
        clients.append(client)
        response = await login(client, email)
        assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        await client.aclose()
