"""``voice-agent events replay`` arguments and settings: exit 2 with one line naming what
is wrong, before anything is sent; a malformed secret stops the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_agent.cli import main
from voice_agent.settings import SettingsError, load_settings


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def exit_code(argv: list[str]) -> int:
    """main's answer, whether argparse exits (SystemExit) or main returns."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["events", "replay", "--since", "yesterday"], "--since"),
        (["events", "replay", "--type", "call.exploded"], "--type"),
        (["events"], "events_command"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/va.db")
    assert exit_code(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("voice-agent: ") and named in line


def test_replay_without_any_webhook_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/va.db")
    assert main(["events", "replay"]) == 2
    assert "EVENTS_WEBHOOK_URL" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("secret", ["not-a-secret", "whsec_%%%", "whsec_c2hvcnQ="])
def test_a_malformed_secret_stops_the_start_naming_it(secret: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(
            events_webhook_url="https://n8n.example.com/webhook/x", events_webhook_secret=secret
        )
    assert str(error.value).startswith("EVENTS_WEBHOOK_SECRET:")
    assert secret not in str(error.value)  # named, never echoed


def test_a_url_without_a_secret_stops_the_start() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(events_webhook_url="https://n8n.example.com/webhook/x")
    assert "EVENTS_WEBHOOK_SECRET" in str(error.value)
