from __future__ import annotations

import tracemalloc

import pytest

from media.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointState,
    SpeechEnded,
    SpeechStarted,
)

# Defaults: 20 ms frames, start after 5 voiced frames, end after 25 silent ones.


def feed(endpointer: Endpointer, pattern: str) -> list[tuple[int, EndpointEvent]]:
    """Push '#' (voiced) / '.' (not); return (frame index, event) for each event."""
    events = []
    for flag in pattern:
        index = endpointer.frame_index
        event = endpointer.push(flag == "#")
        if event is not None:
            events.append((index, event))
    return events


def test_silence_produces_nothing() -> None:
    endpointer = Endpointer()
    assert feed(endpointer, "." * 200) == []
    assert endpointer.state is EndpointState.QUIET
    assert endpointer.frame_index == 200


def test_speech_start_and_end_are_reported_with_retroactive_indices() -> None:
    endpointer = Endpointer()
    events = feed(endpointer, "." * 10 + "#" * 30 + "." * 40)
    assert events == [
        (14, SpeechStarted(onset_frame=10)),  # decided on the 5th voiced frame
        (64, SpeechEnded(onset_frame=10, end_frame=40)),  # on the 25th silent frame
    ]
    assert endpointer.state is EndpointState.QUIET


def test_states_follow_the_hysteresis() -> None:
    endpointer = Endpointer()
    seen = []
    for flag in "#" * 6 + "." * 25:
        endpointer.push(flag == "#")
        seen.append(endpointer.state)
    assert seen[0] is EndpointState.STARTING
    assert seen[4] is EndpointState.SPEAKING
    assert seen[6] is EndpointState.STOPPING
    assert seen[-1] is EndpointState.QUIET
    assert not endpointer.in_speech


def test_silence_one_frame_short_of_the_limit_does_not_end_speech() -> None:
    endpointer = Endpointer()
    assert [type(e) for _, e in feed(endpointer, "#" * 10 + "." * 24)] == [SpeechStarted]
    assert endpointer.state is EndpointState.STOPPING
    assert endpointer.in_speech
    assert [e for _, e in feed(endpointer, ".")] == [SpeechEnded(0, 10)]


@pytest.mark.parametrize("blip", ["#", "##", "###", "####", "##.#", "#.#.#", "##..##"])
def test_a_blip_shorter_than_start_ms_is_ignored(blip: str) -> None:
    endpointer = Endpointer()
    assert feed(endpointer, "." * 20 + blip + "." * 100) == []
    assert endpointer.state is EndpointState.QUIET


def test_gaps_up_to_start_gap_ms_do_not_break_the_start() -> None:
    endpointer = Endpointer()  # start_gap_ms=40: two frames
    events = feed(endpointer, "##..###")
    assert events == [(6, SpeechStarted(onset_frame=0))]


def test_a_longer_gap_restarts_the_onset() -> None:
    endpointer = Endpointer()
    events = feed(endpointer, "##...#####")
    assert events == [(9, SpeechStarted(onset_frame=5))]


def test_a_single_unvoiced_frame_inside_speech_does_not_end_it() -> None:
    endpointer = Endpointer()
    pattern = ("#" * 8 + ".") * 10 + "." * 30
    events = [e for _, e in feed(endpointer, pattern)]
    assert events == [SpeechStarted(0), SpeechEnded(0, 89)]


def test_clicks_in_the_trailing_silence_neither_extend_nor_delay_the_end() -> None:
    endpointer = Endpointer()  # resume_ms=40: two frames
    pattern = "#" * 10 + ".." + "#" + "...." + "#" + "." * 30
    assert feed(endpointer, pattern) == [
        (4, SpeechStarted(0)),
        (34, SpeechEnded(0, 10)),  # 25 frames after the last real voice, clicks counted
    ]


def test_voice_for_resume_ms_takes_a_pause_back_into_speech() -> None:
    endpointer = Endpointer()
    events = feed(endpointer, "#" * 10 + "....." + "##" + "." * 30)
    assert events == [(4, SpeechStarted(0)), (41, SpeechEnded(0, 17))]


def test_a_short_pause_inside_speech_keeps_one_turn() -> None:
    endpointer = Endpointer(silence_ms=500)
    pattern = "#" * 20 + "." * 20 + "#" * 15 + "." * 30  # a 400 ms pause
    events = [e for _, e in feed(endpointer, pattern)]
    assert events == [SpeechStarted(0), SpeechEnded(0, 55)]


def test_consecutive_turns_are_reported_separately() -> None:
    endpointer = Endpointer(silence_ms=200)  # 10 frames
    events = [e for _, e in feed(endpointer, ("#" * 6 + "." * 10) * 3)]
    assert events == [
        SpeechStarted(0),
        SpeechEnded(0, 6),
        SpeechStarted(16),
        SpeechEnded(16, 22),
        SpeechStarted(32),
        SpeechEnded(32, 38),
    ]


def test_durations_round_up_to_whole_frames() -> None:
    endpointer = Endpointer(frame_ms=20, start_ms=90, silence_ms=110)  # 5 and 6 frames
    events = feed(endpointer, "#" * 5 + "." * 6)
    assert events == [(4, SpeechStarted(0)), (10, SpeechEnded(0, 5))]
    endpointer = Endpointer(frame_ms=10, start_ms=100, silence_ms=500)  # 10 and 50
    assert feed(endpointer, "#" * 9) == []
    assert feed(endpointer, "#") == [(9, SpeechStarted(0))]


def test_reset_forgets_speech_and_frame_count() -> None:
    endpointer = Endpointer()
    feed(endpointer, "#" * 10)
    assert endpointer.in_speech
    endpointer.reset()
    assert endpointer.state is EndpointState.QUIET
    assert endpointer.frame_index == 0
    assert feed(endpointer, "." * 50) == []
    assert feed(endpointer, "#" * 5) == [(54, SpeechStarted(50))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_ms": 0}, "frame_ms"),
        ({"start_ms": 0}, "start_ms"),
        ({"silence_ms": -20}, "silence_ms"),
        ({"start_gap_ms": -1}, "start_gap_ms"),
        ({"resume_ms": 0}, "resume_ms"),
    ],
)
def test_rejects_bad_durations(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Endpointer(**kwargs)


def test_events_are_slotted_and_frozen() -> None:
    event = SpeechEnded(3, 9)
    assert not hasattr(event, "__dict__")
    with pytest.raises(AttributeError):
        event.end_frame = 10  # type: ignore[misc]


def test_push_does_not_allocate_between_events() -> None:
    endpointer = Endpointer()
    pattern = [True] * 40 + [False, True] * 20 + [False] * 10  # speech goes on: no events
    for voiced in pattern * 4:  # start speech; take the frame index past small ints
        endpointer.push(voiced)
    tracemalloc.start()
    try:
        for voiced in pattern:  # so the objects alive at the first snapshot are traced
            endpointer.push(voiced)
        before = tracemalloc.take_snapshot()
        for _ in range(50):
            for voiced in pattern:
                endpointer.push(voiced)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(
        stat.size_diff
        for stat in after.compare_to(before, "filename")
        if "endpoint.py" in str(stat.traceback)
    )
    assert grown <= 0
