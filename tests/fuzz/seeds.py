"""Seed inputs for the media-frame fuzz harness: Twilio's documented frames, one per event.

Kept apart from the harness, whose import instruments the project's modules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

_SID = "MZ" + "1f" * 16
_CALL = "CA" + "2e" * 16
SEEDS: list[dict[str, object]] = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": _SID,
        "start": {
            "streamSid": _SID,
            "accountSid": "AC" + "3d" * 16,
            "callSid": _CALL,
            "tracks": ["inbound"],
            "customParameters": {"token": "tok"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    },
    {
        "event": "media",
        "sequenceNumber": "4",
        "streamSid": _SID,
        "media": {
            "track": "inbound",
            "chunk": "2",
            "timestamp": "20",
            "payload": base64.b64encode(bytes(range(160))).decode(),
        },
    },
    {"event": "dtmf", "sequenceNumber": "9", "streamSid": _SID, "dtmf": {"digit": "5"}},
    {"event": "mark", "sequenceNumber": "7", "streamSid": _SID, "mark": {"name": "m1"}},
    {
        "event": "stop",
        "sequenceNumber": "8",
        "streamSid": _SID,
        "stop": {"callSid": _CALL, "accountSid": "AC"},
    },
]


def write_seeds(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, message in enumerate(SEEDS):
        (folder / f"seed-{index}").write_text(json.dumps(message))
