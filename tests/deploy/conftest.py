"""Fixtures for the deployment tests: real server processes on free ports sharing one
scratch PostgreSQL database (and Redis where a test asks), against the OpenAI stand-in
running in the test's own process (no models to load: a server starts in seconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from loadtest.fixtures import Utterance, load_script
from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.app.conftest import PG, pg_database  # noqa: F401 (a fixture)
from tests.calls.cascade_support import FixtureTranscriber, short_responder
from tests.conftest import TWILIO_TOKEN
from tests.deploy.processes import ServerProcess
from voice_agent.demo import free_port


@pytest.fixture(scope="session")
def utterances() -> dict[str, Utterance]:
    return {u.id: u for u in load_script()}


@pytest.fixture
async def standin(utterances: dict[str, Utterance]) -> AsyncIterator[StandinOpenAI]:
    transcriber = FixtureTranscriber(utterances.values())
    async with StandinOpenAI(
        Latency.none(), transcriber=transcriber, responder=short_responder
    ) as server:
        yield server


@pytest.fixture
def server_env(
    tmp_path: Path,
    standin: StandinOpenAI,
    pg_database: str,  # noqa: F811
) -> dict[str, str]:
    """The settings every server process of one test shares."""
    return {
        "DATABASE_URL": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{pg_database}",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "OPENAI_API_KEY": standin.api_key,
        "OPENAI_BASE_URL": standin.base_url,
        "AGENT_PIPELINE": "cascade",
        "ANALYSIS_ENABLED": "false",
        "DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def servers(tmp_path: Path, server_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    """`servers(**settings)`: a started server process on a free port (stopped at teardown).
    PUBLIC_BASE_URL is the first server's origin unless given: behind a balancer every
    host signs and is signed for the one public origin."""
    started: list[ServerProcess] = []

    def start(
        workers: int = 1,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
        port: int | None = None,
        **settings: str,
    ) -> ServerProcess:
        port = port or free_port()
        env = dict(server_env)
        env["PUBLIC_BASE_URL"] = f"http://{host}:{port}"
        env.update({k.upper(): str(v) for k, v in settings.items()})
        log = tmp_path / f"server-{port}.log"
        server = ServerProcess(port, env, log, workers, host=host, prefix=prefix)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
