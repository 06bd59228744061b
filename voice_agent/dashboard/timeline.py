"""A call's turns laid out for the call page: offsets on the recording's clock (t=0 is
calls.started_at) and each reply's latency as waterfall segments."""

from __future__ import annotations

from dataclasses import dataclass, field

from voice_agent.storage.records import StoredCall, StoredTurn

# (key, label) in the order the stages run after the caller stops speaking.
STAGES: tuple[tuple[str, str], ...] = (
    ("endpointing", "endpointing"),
    ("stt", "STT"),
    ("llm", "LLM"),
    ("tts", "TTS first byte"),
    ("other", "other"),
)


@dataclass(slots=True, frozen=True)
class Segment:
    stage: str
    label: str
    ms: float
    start_pct: float
    width_pct: float


@dataclass(slots=True)
class TimelineTurn:
    seq: int
    role: str
    text: str
    offset_s: float
    end_s: float | None
    interrupted: bool
    total_ms: float | None
    llm_first_token_ms: float | None
    segments: list[Segment] = field(default_factory=list)


def _stage_ms(turn: StoredTurn) -> dict[str, float]:
    stages = {
        "endpointing": turn.endpointing_ms or 0.0,
        "stt": turn.stt_ms or 0.0,
        # LLM to its first complete sentence: what TTS waited for. First token is a tick.
        "llm": turn.llm_ms or turn.llm_first_token_ms or 0.0,
        "tts": turn.tts_first_byte_ms or 0.0,
    }
    total = turn.total_ms or 0.0
    stages["other"] = max(0.0, total - sum(stages.values()))
    return stages


def timeline(call: StoredCall) -> list[TimelineTurn]:
    scale = max((t.total_ms or 0.0 for t in call.turns), default=0.0)
    out: list[TimelineTurn] = []
    for turn in call.turns:
        start = (turn.started_at - call.started_at).total_seconds()
        end = (turn.ended_at - call.started_at).total_seconds() if turn.ended_at else None
        item = TimelineTurn(
            seq=turn.seq,
            role=turn.role,
            text=turn.text,
            offset_s=max(0.0, start),
            end_s=end,
            interrupted=turn.interrupted,
            total_ms=turn.total_ms,
            llm_first_token_ms=turn.llm_first_token_ms,
        )
        if turn.total_ms is not None and scale > 0:
            position = 0.0
            for key, label in STAGES:
                ms = _stage_ms(turn)[key]
                width = 100.0 * ms / scale
                if ms > 0:
                    item.segments.append(Segment(key, label, ms, position, width))
                position += width
        out.append(item)
    return out
