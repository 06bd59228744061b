"""Hosts of their own for the two-host test: one Linux network namespace per host, joined
to the test's namespace by a veth pair (its own interface, address and loopback, as a
separate machine on a LAN would have). Needs CAP_NET_ADMIN; `available()` says why not."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def available() -> str | None:
    """None when namespaces can be made here, else the reason they cannot."""
    probe = f"va{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", probe)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no `ip` command: {exc}"
    if made.returncode != 0:
        return f"network namespaces not allowed here: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    """A namespace `name` whose interface has `address`; `gateway` is the test's end."""

    name: str
    address: str
    gateway: str

    def argv(self, command: list[str]) -> list[str]:
        # `ip netns exec` execs the command: the process keeps the pid we see.
        return ["ip", "netns", "exec", self.name, *command]

    def remove(self) -> None:
        _ip("netns", "del", self.name)  # takes the veth pair with it


def make_hosts(count: int) -> list[Host]:
    """`count` namespaces on their own /30s of a random 10.x.y.0/24 (several test runs on
    one machine do not collide); removed by the caller (Host.remove)."""
    tag = secrets.token_hex(2)
    net = f"10.{100 + os.getpid() % 100}.{secrets.randbelow(250)}"
    hosts: list[Host] = []
    try:
        for i in range(count):
            name = f"va{tag}{i}"
            ours, theirs = f"{name}h", f"{name}p"
            gateway, address = f"{net}.{4 * i + 1}", f"{net}.{4 * i + 2}"
            steps = [
                ("netns", "add", name),
                ("link", "add", ours, "type", "veth", "peer", "name", theirs),
                ("link", "set", theirs, "netns", name),
                ("addr", "add", f"{gateway}/30", "dev", ours),
                ("link", "set", ours, "up"),
                ("-n", name, "addr", "add", f"{address}/30", "dev", theirs),
                ("-n", name, "link", "set", theirs, "up"),
                ("-n", name, "link", "set", "lo", "up"),
            ]
            host = Host(name, address, gateway)
            hosts.append(host)
            for step in steps:
                done = _ip(*step)
                if done.returncode != 0:
                    raise RuntimeError(f"ip {' '.join(step)}: {done.stderr.strip()}")
    except Exception:
        for host in hosts:
            host.remove()
        raise
    return hosts
