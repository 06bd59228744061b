"""The dashboard on PostgreSQL, and PostgreSQL going away under it: pages answer 503 in
one line (no stack trace, no hang), and work again once it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.dashboard.conftest import (
    ACME_CALL,
    ACME_STAFF,
    GLOBEX_CALL,
    client_for,
    login,
    seed,
    serve_in_process,
)
from tests.storage.conftest import create_pg_database, drop_pg_database
from tests.tcp_proxy import TcpProxy
from voice_agent.settings import Settings

pytestmark = pytest.mark.postgres


@pytest.fixture
async def proxied_pg() -> AsyncIterator[tuple[TcpProxy, str]]:
    name = await create_pg_database()
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        yield proxy, f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}"
    finally:
        await proxy.aclose()
        await drop_pg_database(name)


async def test_pages_say_503_while_the_database_is_down(
    cascade_settings: Callable[..., Settings], recording: Path, proxied_pg: tuple[TcpProxy, str]
) -> None:
    proxy, url = proxied_pg
    settings = cascade_settings(database_url=url)
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)

        async with client_for(app) as client:
            assert (await login(client, ACME_STAFF)).status_code == 303
            page = await client.get("/calls", params={"q": "kitchen"})
            assert ACME_CALL in page.text and GLOBEX_CALL not in page.text
            assert (await client.get(f"/calls/{GLOBEX_CALL}")).status_code == 404

            await proxy.cut()
            down = await client.get("/calls")
            assert down.status_code == 503
            assert down.text == "The database is unavailable; try again shortly."
            api = await client.get("/api/calls")
            assert api.status_code == 503 and "unavailable" in api.json()["error"]

            await proxy.restore()
            back = await client.get(f"/calls/{ACME_CALL}")
            assert back.status_code == 200 and "kitchen sink" in back.text
