"""The session cookie's signature and expiry, the stored secret shared by workers, and the
login limiter in process and in the real Redis (shared by workers)."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from voice_agent.dashboard.ratelimit import (
    MemoryLoginLimiter,
    RedisLoginLimiter,
    login_failures_key,
)
from voice_agent.dashboard.sessions import Session, SessionCodec, load_secret
from voice_agent.settings import SettingsError, load_settings


def test_cookie_round_trip_and_forgeries() -> None:
    codec = SessionCodec(b"k" * 32)
    session = Session(user_id=7)
    cookie = codec.dumps(session)
    assert codec.loads(cookie) == session
    body, signature = cookie.split(".")
    forged_body = codec.dumps(Session(user_id=1)).split(".")[0]
    for bad in [
        None,
        "",
        "x",
        f"{forged_body}.{signature}",
        f"{body}.{signature[:-2]}AA",
        cookie + ".x",
        "!!!.!!!",
    ]:
        assert codec.loads(bad) is None, bad
    # Another deployment's key does not open it.
    assert SessionCodec(b"z" * 32).loads(cookie) is None
    expired = Session(user_id=7, expires_at=time.time() - 1)
    assert codec.loads(codec.dumps(expired)) is None
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        SessionCodec(b"short")


def test_generated_secret_is_private_and_shared(tmp_path: Path) -> None:
    first = load_secret(None, str(tmp_path / "data"))
    path = tmp_path / "data" / "session_secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(None, str(tmp_path / "data")) == first  # a second worker reads it
    assert len(first) >= 32
    assert load_secret("configured-secret-value", str(tmp_path / "x")) == b"configured-secret-value"
    assert not (tmp_path / "x" / "session_secret").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["session_secret"]


def test_short_session_secret_setting_is_named() -> None:
    with pytest.raises(SettingsError, match=r"^SESSION_SECRET"):
        load_settings(session_secret="tooshort")


async def test_memory_limiter_window() -> None:
    limiter = MemoryLoginLimiter(max_failures=3, window_s=0.2)
    for _ in range(3):
        assert not await limiter.blocked("10.0.0.1", "a@x.com")
        await limiter.failed("10.0.0.1", "a@x.com")
    assert await limiter.blocked("10.0.0.1", "A@X.com ")  # same account, however typed
    assert not await limiter.blocked("10.0.0.2", "a@x.com")  # another address
    await asyncio.sleep(0.25)
    assert not await limiter.blocked("10.0.0.1", "a@x.com")  # the window passed
    await limiter.failed("10.0.0.1", "a@x.com")
    await limiter.succeeded("10.0.0.1", "a@x.com")
    assert not await limiter.blocked("10.0.0.1", "a@x.com")


@pytest.mark.redis
async def test_redis_limiter_is_shared_between_workers() -> None:
    clients = [aioredis.from_url("redis://127.0.0.1:6379/0") for _ in range(2)]
    email = f"{secrets.token_hex(6)}@example.com"
    worker_a, worker_b = (RedisLoginLimiter(c, max_failures=3, window_s=60) for c in clients)
    try:
        await worker_a.failed("10.0.0.1", email)
        await worker_b.failed("10.0.0.1", email)
        assert not await worker_a.blocked("10.0.0.1", email)
        await worker_a.failed("10.0.0.1", email)
        assert await worker_b.blocked("10.0.0.1", email)
        key = login_failures_key("10.0.0.1", email)
        assert email not in key  # hashed: no personal data in Redis
        assert 0 < await clients[0].ttl(key) <= 60
        await worker_b.succeeded("10.0.0.1", email)
        assert not await worker_a.blocked("10.0.0.1", email)
    finally:
        for client in clients:
            await client.aclose()
