"""HAProxy from Debian's package in front of the test's server processes: plain round
robin, no sticky sessions (any host takes any request), health checks on /readyz, and a
log line per request naming the host that took it (logged as soon as the host answers, so
a websocket's line comes when it is upgraded, not when it closes)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

#: .ci/run installs haproxy and sets this: in CI the two-host test must run, never skip.
REQUIRED = "VOICE_AGENT_REQUIRE_HAPROXY"

_CONFIG = """\
global
    log stdout format raw local0 info
    maxconn 1000

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    # A host that died: the request is sent to another, as a client never sees it.
    retries 3
    option redispatch 1

frontend public
    bind {bind}
    log global
    option logasap
    log-format "%s %{{+Q}}r %ST"
    option http-server-close
    default_backend hosts

backend hosts
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 200ms fall 1 rise 2
{servers}
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None
    )
    if found is None:
        reason = "haproxy is not installed (apt-get install -y haproxy; .ci/run installs it)"
        if os.environ.get(REQUIRED):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@dataclass
class Balancer:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hosts_for(self, method: str, path: str) -> list[str]:
        """The backend host that took each `method path` request, in order."""
        taken = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            host, _, rest = line.partition(" ")
            if rest.startswith(f'"{method} {path}'):
                taken.append(host)
        return taken

    async def all_up(self, hosts: int, within_s: float = 10.0) -> None:
        """Until a request through the balancer has reached each host (started after the
        hosts are ready, so this is the balancer's own start)."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while len(set(self.hosts_for("GET", "/readyz")) - {"<NOSRV>"}) < hosts:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"haproxy not serving:\n{self.log_path.read_text()}")
                try:
                    await http.get(self.base_url + "/readyz")
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)

    async def listening(self, address: str, within_s: float = 10.0) -> None:
        """Until `address` (host:port, one of the relays) takes connections."""
        host, port = address.rsplit(":", 1)
        deadline = time.monotonic() + within_s
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log_path.read_text()
                    raise AssertionError(f"haproxy not relaying:\n{log}") from exc
                await asyncio.sleep(0.05)
            else:
                writer.close()
                return

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


_RELAY = """
listen relay{index}
    mode tcp
    no log
    timeout client 1h
    timeout server 1h
    bind {bind}
    server target {target}
"""


def start_balancer(
    port: int,
    hosts: dict[str, tuple[str, int]],
    directory: Path,
    relays: list[tuple[str, str]] | None = None,
) -> Balancer:
    """HAProxy on 127.0.0.1:`port` in front of `hosts` (name: address, port); each of
    `relays` (bind address, target) a plain TCP relay, for hosts in namespaces to reach
    the machine's PostgreSQL, Redis and stand-ins, which listen on its loopback only."""
    servers = "\n".join(
        f"    server {name} {address}:{port} check" for name, (address, port) in hosts.items()
    )
    config = directory / "haproxy.cfg"
    text = _CONFIG.format(bind=f"127.0.0.1:{port}", servers=servers)
    for index, (bind, target) in enumerate(relays or []):
        text += _RELAY.format(index=index, bind=bind, target=target)
    config.write_text(text)
    log_path = directory / "haproxy.log"
    process = subprocess.Popen(
        [haproxy_binary(), "-db", "-f", str(config)],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Balancer(port, log_path, process)
