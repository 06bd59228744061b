"""`voice-agent user add`: the installed command against a real SQLite file; a bad argument
exits 2 with one line naming it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voice_agent.storage.database import Database
from voice_agent.storage.users import UserRepository

CLI = Path(sys.executable).with_name("voice-agent")


def user_add(
    tmp_path: Path, *args: str, stdin: str = "pw-123456\n"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/va.db",
        "DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [str(CLI), "user", "add", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _sign_in(tmp_path: Path, email: str, password: str) -> str | None:
    db = await Database.connect(f"sqlite:///{tmp_path}/va.db")
    try:
        user = await UserRepository(db).authenticate(email, password)
    finally:
        await db.dispose()
    return None if user is None else f"{user.role}:{user.tenant}"


def test_add_admin_and_staff_then_sign_in(tmp_path: Path) -> None:
    done = user_add(tmp_path, "Boss@Example.com", "--role", "admin", "--password-stdin")
    assert done.returncode == 0, done.stderr
    assert "added admin boss@example.com" in done.stdout
    # The default tenant exists even before the server's first start.
    staff = user_add(
        tmp_path,
        "desk@example.com",
        "--role",
        "staff",
        "--tenant",
        "default",
        "--password-stdin",
        stdin="desk pass\n",
    )
    assert staff.returncode == 0, staff.stderr
    assert asyncio.run(_sign_in(tmp_path, "boss@example.com", "pw-123456")) == "admin:None"
    assert asyncio.run(_sign_in(tmp_path, "desk@example.com", "desk pass")) == "staff:default"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["x@example.com", "--role", "owner"], "--role"),
        (["x@example.com", "--role", "staff"], "--tenant"),
        (["x@example.com", "--role", "admin", "--tenant", "default"], "--tenant"),
        (["x@example.com", "--role", "staff", "--tenant", "nope"], "--tenant"),
        (["not-an-email", "--role", "admin"], "email"),
        (["dup@example.com", "--role", "admin"], "email"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    assert (
        user_add(tmp_path, "dup@example.com", "--role", "admin", "--password-stdin").returncode == 0
    )
    done = user_add(tmp_path, *args, "--password-stdin")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr


def test_empty_password_is_refused(tmp_path: Path) -> None:
    done = user_add(tmp_path, "x@example.com", "--role", "admin", "--password-stdin", stdin="\n")
    assert done.returncode == 2 and "password" in done.stderr
