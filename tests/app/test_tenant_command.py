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
