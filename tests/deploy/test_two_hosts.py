"""Two hosts behind a load balancer: two real `voice-agent serve` processes, each on a host
of its own (loopback addresses 127.0.0.2 and 127.0.0.3; and, where the machine allows it,
network namespaces joined by veth links), sharing real PostgreSQL and Redis, behind
HAProxy from Debian's package (round robin, no sticky sessions), all reached through the
one public origin Twilio signs. The Twilio webhook lands on one host and the media stream
on the other; a dashboard hang-up posted to the host without the call reaches it; then the
host holding the next call is SIGKILLed, the simulated caller follows Twilio's <Redirect>
through the balancer, and the call goes on, with its history, on the host left."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.conftest import PG
from tests.app.twilio_side import new_call_sid, voice_params
from tests.deploy import netns
from tests.deploy.balancer import Balancer, start_balancer
from tests.deploy.processes import PhoneLine, ServerProcess, post_form, wait_for
from tests.deploy.test_drain import stored_call
from tests.deploy.test_live_control import add_admin, signed_in, wait_for_end
from tests.deploy.test_resume import parse
from voice_agent.conversation.session import ENDING_NOW
from voice_agent.demo import free_port
from voice_agent.resume import RESUME_PATH, RESUME_PHRASE

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS = "redis://127.0.0.1:6379/0"
REDIS_PORT = 6379
LOOPBACK_HOSTS = {"host_a": "127.0.0.2", "host_b": "127.0.0.3"}


@pytest.fixture
def balancer_port() -> int:
    return free_port()


Balanced = tuple[Balancer, dict[str, ServerProcess]]


@pytest.fixture
def on_loopback(
    servers: Callable[..., ServerProcess], balancer_port: int, tmp_path: Path
) -> Iterator[Balanced]:
    """Hosts on loopback addresses of their own (127.0.0.2, 127.0.0.3)."""
    public = f"http://127.0.0.1:{balancer_port}"
    hosts = {
        name: servers(host=address, redis_url=REDIS, public_base_url=public)
        for name, address in LOOPBACK_HOSTS.items()
    }
    backends = {name: (server.host, server.port) for name, server in hosts.items()}
    balancer = start_balancer(balancer_port, backends, tmp_path)
    try:
        yield balancer, hosts
    finally:
        balancer.stop()


@pytest.fixture
def in_namespaces(
    servers: Callable[..., ServerProcess],
    balancer_port: int,
    tmp_path: Path,
    server_env: dict[str, str],
    standin: StandinOpenAI,
) -> Iterator[Balanced]:
    """Hosts in network namespaces with veth links: each has its own interface, address and
    loopback; it reaches PostgreSQL, Redis and the OpenAI stand-in (which listen on this
    machine's loopback) through TCP relays on its link, as a host reaches managed ones."""
    reason = netns.available()
    if reason is not None:
        pytest.skip(reason)
    made = netns.make_hosts(len(LOOPBACK_HOSTS))
    balancer: Balancer | None = None
    try:
        standin_port = int(standin.base_url.split("://", 1)[1].split("/", 1)[0].rsplit(":")[1])
        relays: list[tuple[str, str]] = []
        for host in made:
            for port in (PG["port"], REDIS_PORT, standin_port):
                relays.append((f"{host.gateway}:{port}", f"127.0.0.1:{port}"))
        ports = [free_port() for _ in made]
        named = list(zip(LOOPBACK_HOSTS, made, ports, strict=True))
        backends = {name: (host.address, port) for name, host, port in named}
        # The relays must be up before the servers connect to the database at start.
        balancer = start_balancer(balancer_port, backends, tmp_path, relays)
        for bind, _ in relays:
            asyncio.run(balancer.listening(bind))
        public = balancer.base_url
        hosts = {}
        for name, host, port in named:
            local = f"@{PG['host']}:"
            hosts[name] = servers(
                host=host.address,
                port=port,
                prefix=tuple(host.argv([])),
                public_base_url=public,
                redis_url=f"redis://{host.gateway}:{REDIS_PORT}/0",
                database_url=server_env["DATABASE_URL"].replace(local, f"@{host.gateway}:"),
                openai_base_url=standin.base_url.replace("127.0.0.1", host.gateway),
            )
        yield balancer, hosts
    finally:
        if balancer is not None:
            balancer.stop()
        for host in made:
            host.remove()


async def placed_call(balancer: Balancer) -> tuple[PhoneLine, str]:
    """A call as Twilio places it through the public origin: the voice webhook, then the
    media stream its TwiML names. Returns the line and the <Redirect> URL."""
    public = balancer.base_url
    call_sid = new_call_sid()
    response = await post_form(public, public, "/twilio/voice", voice_params(call_sid))
    assert response.status_code == 200, response.text
    twiml = parse(response.text)
    assert twiml.token and twiml.redirect
    ws_url = public.replace("http://", "ws://") + "/twilio/media"
    line = await PhoneLine.open(ws_url, public + "/twilio/media", call_sid, twiml.token)
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    return line, twiml.redirect


async def test_two_hosts_on_loopback_addresses(
    on_loopback: Balanced, utterances: dict[str, Utterance], standin: StandinOpenAI
) -> None:
    await across_two_hosts(on_loopback, utterances, standin, "loopback addresses")


async def test_two_hosts_in_network_namespaces(
    in_namespaces: Balanced, utterances: dict[str, Utterance], standin: StandinOpenAI
) -> None:
    await across_two_hosts(in_namespaces, utterances, standin, "network namespaces")


async def across_two_hosts(
    balanced: Balanced, utterances: dict[str, Utterance], standin: StandinOpenAI, kind: str
) -> None:
    started = time.monotonic()
    balancer, hosts = balanced
    await asyncio.gather(*(host.ready() for host in hosts.values()))
    await balancer.all_up(len(hosts))

    # 1. The webhook on one host, the media stream on the other.
    line, _ = await placed_call(balancer)
    (webhook_host,) = balancer.hosts_for("POST", "/twilio/voice")
    (media_host,) = balancer.hosts_for("GET", "/twilio/media")
    assert webhook_host != media_host, balancer.log_path.read_text()

    # 2. Staff signed in on the host without the call end it: it reaches the holder.
    other = hosts[webhook_host]
    add_admin(other, "ops@example.com")
    client, csrf = await signed_in(other, "ops@example.com")
    try:
        await wait_for(lambda: line.agent_quiet, 15, "the greeting's end")
        response = await client.post(
            f"/api/calls/{line.call_sid}/hangup", headers={"x-csrf-token": csrf}
        )
    finally:
        await client.aclose()
    assert response.status_code == 200, response.text
    holder_pid = hosts[media_host].process.pid  # type: ignore[union-attr]
    assert response.json()["worker"].endswith(f":{holder_pid}")
    await asyncio.wait_for(line.closed.wait(), 20)
    await line.aclose()
    await wait_for_end(other, line.call_sid)
    ended = await stored_call(other.env["DATABASE_URL"], line.call_sid)
    assert [t.text for t in ended.turns if t.role == "agent"][-1].startswith(ENDING_NOW)

    # 3. The next call's host is killed; Twilio's <Redirect> goes through the balancer to
    #    the host left, and the call goes on from its stored turns.
    line, redirect = await placed_call(balancer)
    holder_name = balancer.hosts_for("GET", "/twilio/media")[-1]
    survivor_name = next(name for name in hosts if name != holder_name)
    await line.turn(utterances["need"].audio)
    await asyncio.sleep(1.0)  # turns are durable within a second
    killed_at = time.monotonic()
    os.killpg(hosts[holder_name].process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    await asyncio.wait_for(line.closed.wait(), 5)
    await line.aclose()
    public = balancer.base_url
    assert redirect == public + RESUME_PATH
    params = voice_params(line.call_sid, CallStatus="in-progress")
    response = await post_form(public, public, RESUME_PATH, params)
    assert response.status_code == 200, response.text
    resumed = parse(response.text)
    assert resumed.token and not resumed.hangup
    ws_url = public.replace("http://", "ws://") + "/twilio/media"
    again = await PhoneLine.open(ws_url, public + "/twilio/media", line.call_sid, resumed.token)
    await wait_for(lambda: bool(again.agent_media), 10, "the resumed stream's first audio")
    silence_s = again.agent_media[0][0] - killed_at
    assert balancer.hosts_for("POST", RESUME_PATH)[-1] == survivor_name
    assert balancer.hosts_for("GET", "/twilio/media")[-1] == survivor_name
    before = len(standin.recorded("chat"))
    await again.turn(utterances["budget"].audio)
    chats = standin.recorded("chat")[before:]
    said = [m.get("content") for m in chats[-1].body["messages"] if m.get("role") == "user"]
    assert said[0] == utterances["need"].text, said  # heard by the host that died
    await again.hang_up()
    survivor = hosts[survivor_name]
    await wait_for_end(survivor, line.call_sid)
    call = await stored_call(survivor.env["DATABASE_URL"], line.call_sid)
    assert RESUME_PHRASE in [t.text for t in call.turns if t.role == "agent"]
    caller = [t.text for t in call.turns if t.role == "caller"]
    assert caller == [utterances["need"].text, utterances["budget"].text]
    took_s = time.monotonic() - started
    print(
        f"\ntwo hosts ({kind}) behind HAProxy: webhook on {webhook_host}, media on {media_host};"
        f" failover silence {silence_s * 1000:.0f} ms; whole test {took_s:.1f} s"
    )
    assert silence_s < 3.0
    assert took_s < 60.0
