"""/readyz of a real `voice-agent serve` process follows PostgreSQL: 503 naming the
database while it cannot be reached (the balancer takes the host out of the pool), 200
again when it returns, and the process lives through it. PostgreSQL is shared by other
tests on this machine, so it is "stopped" by cutting the TCP proxy the server reaches it
through (every connection dropped, new ones refused), not by stopping the cluster."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.app.conftest import PG, pg_proxy  # noqa: F401 (a fixture)
from tests.deploy.processes import ServerProcess
from tests.deploy.test_drain import wait_for_status
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


async def test_readyz_is_503_while_postgres_is_down_and_200_when_it_returns(
    servers: Callable[..., ServerProcess],
    pg_proxy: TcpProxy,  # noqa: F811
    server_env: dict[str, str],
) -> None:
    direct = f"@{PG['host']}:{PG['port']}/"
    url = server_env["DATABASE_URL"].replace(direct, f"@127.0.0.1:{pg_proxy.port}/")
    server = servers(database_url=url)
    await server.ready()

    await pg_proxy.cut()
    cut_at = time.monotonic()
    await wait_for_status(server, 503, within_s=5.0)
    down_s = time.monotonic() - cut_at
    async with httpx.AsyncClient(timeout=5.0) as http:
        body = (await http.get(server.base_url + "/readyz")).json()
        assert body["ready"] is False and "database" in body["problems"], body
        assert (await http.get(server.base_url + "/healthz")).status_code == 200

    await pg_proxy.restore()
    back_at = time.monotonic()
    await wait_for_status(server, 200, within_s=10.0)
    up_s = time.monotonic() - back_at
    assert server.process is not None and server.process.poll() is None
    print(f"\n/readyz 503 {down_s * 1000:.0f} ms after the cut, 200 {up_s * 1000:.0f} ms after")
