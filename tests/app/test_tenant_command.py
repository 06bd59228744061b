"""`voice-agent tenant add|list`: a tenant and its numbers from the shell, with every bad
field refused in one line that names it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.app.test_settings_and_cli import CLI


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(CLI), "tenant", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_add_then_list(tmp_path: Path) -> None:
    made = _run(tmp_path, "add", "acme", "--name", "Acme Plumbing", "--number", "(415) 555-0100")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "added tenant acme (Acme Plumbing)"
    listed = _run(tmp_path, "list")
    assert listed.returncode == 0
    assert listed.stdout.split("\n")[0].split("\t") == [
        "acme",
        "Acme Plumbing",
        "receptionist/lead_qualifier",
        "+14155550100",
    ]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("Bad_Slug", "--name", "X"), "SLUG:"),
        (("globex", "--name", " "), "--name:"),
        (("globex", "--name", "G", "--agent", "nobody"), "--agent:"),
        (("globex", "--name", "G", "--timezone", "Mars/Base"), "--timezone:"),
        (("globex", "--name", "G", "--number", "12"), "--number:"),
    ],
)
def test_bad_fields_exit_2_naming_them(tmp_path: Path, args: tuple[str, ...], named: str) -> None:
    result = _run(tmp_path, "add", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr


def test_an_existing_slug_is_not_overwritten(tmp_path: Path) -> None:
    assert _run(tmp_path, "add", "acme", "--name", "Acme").returncode == 0
    again = _run(tmp_path, "add", "acme", "--name", "Someone Else")
    assert again.returncode == 2 and "exists already" in again.stderr
    assert "\tAcme\t" in _run(tmp_path, "list").stdout


def test_calling_hours_days_and_own_agents(tmp_path: Path) -> None:
    import sqlite3

    made = _run(
        tmp_path,
        "add",
        "acme",
        "--name",
        "Acme Plumbing",
        "--calling-hours",
        "08:30-17:00",
        "--calling-days",
        "54321",
    )
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(tmp_path / "t.db") as db:
        row = db.execute(
            "SELECT calling_start_min, calling_end_min, calling_days FROM tenants"
        ).fetchone()
        agents = db.execute(
            "SELECT a.slug, v.version, v.data FROM tenant_agents a"
            " JOIN agent_versions v ON v.agent_id = a.id ORDER BY a.slug"
        ).fetchall()
    assert row == (510, 1020, "12345")
    # Its own copies of both templates, introducing it by its own name.
    assert [(slug, version) for slug, version, _ in agents] == [
        ("lead_qualifier", 1),
        ("receptionist", 1),
    ]
    assert all('"business_name": "Acme Plumbing"' in data for _, _, data in agents)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--calling-hours", "9-5"), "--calling-hours:"),
        (("--calling-hours", "20:00-09:00"), "--calling-hours:"),
        (("--calling-hours", "25:00-26:00"), "--calling-hours:"),
        (("--calling-days", "189"), "--calling-days:"),
        (("--calling-days", "11"), "--calling-days:"),
    ],
)
def test_bad_calling_window_exits_2(tmp_path: Path, args: tuple[str, ...], named: str) -> None:
    result = _run(tmp_path, "add", "globex", "--name", "G", *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr
