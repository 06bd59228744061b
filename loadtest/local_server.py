"""The server under test as a subprocess of the load generator, with the OpenAI stand-in
beside it (its own process too), each optionally pinned to a CPU core."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtest.standins.openai_server import Latency

_START_TIMEOUT_S = 60.0


class ServerStartError(RuntimeError):
    """The server or the stand-in did not come up; the message says why (with its log)."""


@dataclass(frozen=True, slots=True)
class LocalServer:
    base_url: str
    pid: int
    auth_token: str
    log_path: Path


@dataclass(frozen=True, slots=True)
class ServerOptions:
    latency: Latency
    workers: int = 1
    server_cpu: int | None = None
    standin_cpu: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    endpointing_ms: int = 500
    log_level: str = "warning"
    pipeline: str = "cascade"
    realtime_response_ms: float = 450.0
    #: Share of provider requests the stand-in answers with a random fault (#16).
    fault_rate: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        # Threads and worker processes started later inherit the affinity.
        os.sched_setaffinity(pid, {cpu})


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start_standin(
    options: ServerOptions, api_key: str, log: Path
) -> tuple[subprocess.Popen[bytes], str, str | None]:
    lat = options.latency
    command = [
        sys.executable,
        "-m",
        "loadtest.standins.serve",
        f"--stt-ms={lat.stt_ms}",
        f"--llm-first-token-ms={lat.llm_first_token_ms}",
        f"--llm-token-ms={lat.llm_token_ms}",
        f"--tts-first-byte-ms={lat.tts_first_byte_ms}",
        f"--tts-realtime-factor={lat.tts_realtime_factor}",
        f"--api-key={api_key}",
        f"--fault-rate={options.fault_rate}",
    ]
    if options.pipeline == "realtime":
        command += ["--realtime", f"--realtime-response-ms={options.realtime_response_ms}"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log.open("wb"), cwd=log.parent
    )
    _pin(process.pid, options.standin_cpu)
    assert process.stdout is not None
    line = process.stdout.readline()  # READY, or nothing when it fails
    if not line.startswith(b"READY "):
        _stop(process)
        raise ServerStartError(f"the OpenAI stand-in did not start: {log.read_text()[-2000:]}")
    words = line.decode().split()
    return process, words[1], (words[2] if len(words) > 2 else None)


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerStartError(
                    f"voice-agent serve exited with {process.returncode}: {log.read_text()[-2000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get(base_url + "/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    raise ServerStartError(f"voice-agent serve not ready after {_START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def local_server(options: ServerOptions) -> Iterator[LocalServer]:
    """`voice-agent serve` on a free port, on the cascade (or realtime) pipeline against
    the stand-in, with a fresh SQLite database (unless one is given) in a temporary directory."""
    api_key = "sk-" + secrets.token_hex(8)
    auth_token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="voice-agent-loadtest-") as folder:
        workdir = Path(folder)
        standin, openai_url, realtime_url = _start_standin(
            options, api_key, workdir / "standin.log"
        )
        server: subprocess.Popen[bytes] | None = None
        try:
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "AGENT_PIPELINE": options.pipeline,
                "OPENAI_API_KEY": api_key,
                "OPENAI_BASE_URL": openai_url,
                "DATABASE_URL": options.database_url or f"sqlite:///{workdir}/loadtest.db",
                "PUBLIC_BASE_URL": base_url,
                "TWILIO_AUTH_TOKEN": auth_token,
                "TWILIO_VALIDATE": "true",
                "ENDPOINTING_SILENCE_MS": str(options.endpointing_ms),
                "DATA_DIR": str(workdir / "data"),
            }
            env.pop("TWILIO_ACCOUNT_SID", None)
            # The offline last resort cost memory and, on faulted requests, CPU that the
            # stand-in does not: off unless the environment asks for it.
            env.setdefault("FALLBACK_OFFLINE_SPEECH", "false")
            env.pop("OPENAI_REALTIME_URL", None)
            if realtime_url:
                env["OPENAI_REALTIME_URL"] = realtime_url
            env.pop("REDIS_URL", None)
            if options.redis_url:
                env["REDIS_URL"] = options.redis_url
            log = workdir / "server.log"
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "voice_agent.cli",
                    "serve",
                    "--host=127.0.0.1",
                    f"--port={port}",
                    f"--workers={options.workers}",
                    f"--log-level={options.log_level}",
                ],
                env=env,
                cwd=workdir,  # no stray ./.env is read; data lands in the temporary folder
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            _pin(server.pid, options.server_cpu)
            _wait_ready(base_url, server, log)
            yield LocalServer(base_url, server.pid, auth_token, log)
        finally:
            if server is not None:
                _stop(server)
            _stop(standin)
