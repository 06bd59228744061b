"""A stored call as a transcript: the JSON contract of ``voice-agent transcript --json``
and the API, and a plain-text rendering for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voice_agent.storage.records import StoredCall, StoredTurn
from voice_agent.storage.tables import LATENCY_COLUMNS

# The JSON contract (spec/interface.md) allows only caller/agent turns, so "event" turns
# (transfers, notes) appear in the text rendering only.
_SPEAKERS = {"caller": "Caller", "agent": "Agent"}


def analysis_dict(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """The contract's ``analysis`` object from what the analysis stored on the call."""
    if not document:
        return None
    return {
        "summary": document.get("summary", ""),
        "outcome": document.get("outcome", "other"),
        "fields": document.get("fields") or {},
    }


def transcript_dict(call: StoredCall) -> dict[str, Any]:
    """JSON-ready; ``latency_ms`` is end of caller speech to first agent audio (or None)."""
    data = {
        "call_sid": call.call_sid,
        "tenant": call.tenant,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "agent": call.agent,
        "status": call.status,
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "turns": [_turn_dict(t) for t in call.turns if t.role in _SPEAKERS],
    }
    # Once the call has ended and been analysed (#12).
    if (analysis := analysis_dict(call.analysis)) is not None:
        data["analysis"] = analysis
    return data


def transcript_text(call: StoredCall) -> str:
    lines = [
        f"Call {call.call_sid}  {call.direction}  {call.from_number} -> {call.to_number}",
        f"Tenant: {call.tenant}  Agent: {call.agent}  Pipeline: {call.pipeline}",
        f"Started: {_human_time(call.started_at)}"
        + (f"  Ended: {_human_time(call.ended_at)}" if call.ended_at else "")
        + (f"  Duration: {_elapsed(call.duration_s)}" if call.duration_s is not None else ""),
        f"Status: {call.status}" + (f" ({call.end_reason})" if call.end_reason else ""),
        *_analysis_lines(call.analysis),
        "",
    ]
    for turn in call.turns:
        # Times are offsets from the start of the call, like a recording's timeline.
        stamp = _elapsed((turn.started_at - call.started_at).total_seconds())
        speaker = _SPEAKERS.get(turn.role)
        if speaker is None:
            lines.append(f"[{stamp}] ({turn.text})")
            continue
        line = f"[{stamp}] {speaker}: {turn.text}"
        if turn.role == "agent" and turn.total_ms is not None:
            line += f"  ({turn.total_ms:.0f} ms)"
        if turn.interrupted:
            line += "  [interrupted]"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _analysis_lines(document: dict[str, Any] | None) -> list[str]:
    analysis = analysis_dict(document)
    if analysis is None:
        return []
    lines = [f"Outcome: {analysis['outcome']}", f"Summary: {analysis['summary']}"]
    lines += [
        f"  {name}: {value}" for name, value in analysis["fields"].items() if value is not None
    ]
    return lines


def _turn_dict(turn: StoredTurn) -> dict[str, Any]:
    return {
        "role": turn.role,
        "text": turn.text,
        "started_at": _iso(turn.started_at),
        "latency_ms": turn.total_ms,
        "interrupted": turn.interrupted,
        "latency": {name: getattr(turn, name) for name in LATENCY_COLUMNS},
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _human_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value is not None else ""


def _elapsed(seconds: float | None) -> str:
    total = max(0, int(seconds or 0))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
