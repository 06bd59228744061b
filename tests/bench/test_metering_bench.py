"""What metering adds to a turn on the call path (run with --benchmark-enable; off by
default): one cascade turn reports five usage events (STT seconds, LLM input and output
tokens, TTS characters for two sentences), each through the tap and tee to the recorder,
which puts a usage row (and, with Stripe, its outbox message) on the write queue."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from voice_agent.call_tap import CallTap
from voice_agent.conversation.ports import CallInfo, UsageEvent
from voice_agent.conversation.sinks import TeeSink
from voice_agent.metrics import Metrics
from voice_agent.recorder import CallRecorder
from voice_agent.storage.records import WriteRecord
from voice_agent.storage.write_queue import WriteQueue

CALL = CallInfo("CA" + "0" * 32, "MZ" + "0" * 32, "acme", "inbound", "+1555", "+1556", "a", "x")
TURN = (
    UsageEvent("stt_seconds", 2.34, "whisper-1"),
    UsageEvent("llm_input_tokens", 812, "gpt-4o"),
    UsageEvent("llm_output_tokens", 31, "gpt-4o"),
    UsageEvent("tts_characters", 64, "tts-1"),
    UsageEvent("tts_characters", 48, "tts-1"),
)


class _NoWrites:
    async def write(self, records: Sequence[WriteRecord]) -> None:  # never runs: not started
        raise AssertionError


def _sink(report_usage: bool, metering: bool = True) -> tuple[CallTap, WriteQueue]:
    queue = WriteQueue(_NoWrites(), max_pending=10**9)
    recorder = CallRecorder(queue, Metrics(), metering=metering, report_usage=report_usage)
    tee = TeeSink(recorder)
    tap = CallTap(
        call=CALL,
        agent=None,
        sink=tee,
        line=None,
        recordings=None,
        transfers=None,  # type: ignore[arg-type]
    )
    return tap, queue


@pytest.mark.parametrize(
    ("report_usage", "metering"),
    [(False, True), (True, True), (False, False)],
    ids=["rows", "rows+stripe", "off"],
)
def test_metering_one_turn(
    benchmark: pytest.FixtureRequest, report_usage: bool, metering: bool
) -> None:
    tap, queue = _sink(report_usage, metering)

    def one_turn() -> None:
        for event in TURN:
            tap.usage(CALL, event)

    one_turn()
    expected = (2 if report_usage else 1) * len(TURN) if metering else 0
    assert queue.pending == expected
    benchmark(one_turn)
