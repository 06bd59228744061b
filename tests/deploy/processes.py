"""Real `voice-agent serve` processes for the deployment tests, and a phone line that
plays Twilio's side of a call in real time (a 20 ms frame every 20 ms, as Twilio sends)."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.app.twilio_side import ACCOUNT_SID, SILENCE_FRAME, sign
from tests.conftest import TWILIO_TOKEN

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    """One `voice-agent serve` on its own port; `env` holds its settings."""

    port: int
    env: dict[str, str]
    log_path: Path
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None
    #: A loopback address of its own (127.0.0.2, ...) plays a separate host.
    host: str = "127.0.0.1"
    #: What the command runs under (`ip netns exec NAME`: a host of its own).
    prefix: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k.upper() not in self.env}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        argv = [sys.executable, "-m", "voice_agent.cli", "serve", "--port", str(self.port)]
        argv = [*self.prefix, *argv, "--host", self.host]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(
            argv,
            cwd=self.log_path.parent,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a signal to the test's group never reaches it
        )

    async def ready(self, within_s: float = 60.0) -> None:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
                try:
                    if (await http.get(self.base_url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server on {self.port} not ready:\n{self.log()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def exited(self, within_s: float) -> int:
        deadline = time.monotonic() + within_s
        assert self.process is not None
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"server still running after {within_s} s:\n{self.log()}")
            await asyncio.sleep(0.02)
        return self.process.returncode

    def stop(self) -> None:
        """Teardown: whatever is left of the process group goes."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


async def post_form(
    base_url: str, public_url: str, path: str, params: dict[str, str]
) -> httpx.Response:
    """A webhook as Twilio sends it: form-encoded and signed over the public URL."""
    headers = {"X-Twilio-Signature": sign(public_url + path, params, TWILIO_TOKEN)}
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(base_url + path, data=params, headers=headers)


@dataclass
class PhoneLine:
    """Twilio's side of one Media Stream, in real time: silence or queued caller audio every
    20 ms, agent marks echoed when their audio would have finished playing, and the time of
    every agent media message kept (to measure what the caller heard, and when)."""

    ws: ClientConnection
    call_sid: str
    stream_sid: str
    agent_audio: bytearray = field(default_factory=bytearray)
    #: (monotonic time, bytes) of every agent media message.
    agent_media: list[tuple[float, int]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _queue: bytearray = field(default_factory=bytearray)
    _seq: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _played_until: float = 0.0

    @classmethod
    async def open(cls, ws_url: str, public_url: str, call_sid: str, token: str) -> PhoneLine:
        signed = "wss://" + public_url.split("://", 1)[1]  # Twilio signs the public wss URL
        headers = {"X-Twilio-Signature": sign(signed, {}, TWILIO_TOKEN)}
        ws = await connect(ws_url, additional_headers=headers, compression=None, max_size=2**22)
        line = cls(ws, call_sid, "MZ" + os.urandom(16).hex())
        await line._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await line._send(
            {
                "event": "start",
                "sequenceNumber": line._next(),
                "streamSid": line.stream_sid,
                "start": {
                    "streamSid": line.stream_sid,
                    "accountSid": ACCOUNT_SID,
                    "callSid": call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"token": token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        line._tasks = [asyncio.create_task(line._receive()), asyncio.create_task(line._pace())]
        return line

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def _send(self, message: dict[str, object]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    def say(self, ulaw: bytes, then_silence_ms: int = 0) -> None:
        self._queue += ulaw + b"\xff" * (8 * then_silence_ms)

    @property
    def saying(self) -> bool:
        return bool(self._queue)

    async def _pace(self) -> None:
        next_at = time.monotonic()
        chunk = 0
        try:
            while not self.closed.is_set():
                frame = SILENCE_FRAME
                if self._queue:
                    frame = bytes(self._queue[:160]).ljust(160, b"\xff")
                del self._queue[:160]
                chunk += 1
                await self._send(
                    {
                        "event": "media",
                        "sequenceNumber": self._next(),
                        "streamSid": self.stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk),
                            "timestamp": str(chunk * 20),
                            "payload": base64.b64encode(frame).decode(),
                        },
                    }
                )
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        except ConnectionClosed:
            pass

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                event = message.get("event")
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    now = time.monotonic()
                    self.agent_audio += audio
                    self.agent_media.append((now, len(audio)))
                    self._played_until = max(self._played_until, now) + len(audio) / 8000
                elif event == "mark":
                    # Twilio echoes a mark once the audio before it has played.
                    delay = max(0.0, self._played_until - time.monotonic())
                    asyncio.get_running_loop().call_later(
                        delay, self._echo, message["mark"]["name"]
                    )
                elif event == "clear":
                    self._played_until = time.monotonic()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def _echo(self, name: str) -> None:
        if self.closed.is_set():
            return
        message = {"event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid}
        message["mark"] = {"name": name}
        task = asyncio.ensure_future(self._send(message))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    @property
    def agent_quiet(self) -> bool:
        """The agent's audio so far has all played and nothing new came for 300 ms."""
        now = time.monotonic()
        last = self.agent_media[-1][0] if self.agent_media else 0.0
        return self._played_until <= now and now - last > 0.3

    async def turn(self, ulaw: bytes, within_s: float = 15.0) -> None:
        """Wait for the agent to finish, speak `ulaw`, and wait for the whole reply."""
        await wait_for(lambda: self.agent_quiet, within_s, "the agent to finish speaking")
        before = len(self.agent_media)
        self.say(ulaw, then_silence_ms=800)
        await wait_for(lambda: len(self.agent_media) > before, within_s, "the agent's reply")
        await wait_for(lambda: self.agent_quiet, within_s, "the end of the agent's reply")

    def audio_since(self, at: float) -> int:
        return sum(n for t, n in self.agent_media if t >= at)

    async def hang_up(self) -> None:
        """The caller hangs up: Twilio sends `stop` and closes the socket."""
        if not self.closed.is_set():
            try:
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": self._next(),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
                    }
                )
                await self.ws.close()
            except ConnectionClosed:
                pass
        await self.aclose()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ws.close()


async def wait_for(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(0.02)
