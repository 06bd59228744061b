"""Playback and SpokenReply: what the caller heard, from the marks Twilio echoes."""

from __future__ import annotations

import asyncio
import time

from voice_agent.conversation.playback import Playback, SpokenReply

SENTENCES = ("Thanks for calling Acme Home Services today.", "How can I help?")


def spoken(*sentences: str, durations: tuple[float | None, ...] = ()) -> SpokenReply:
    reply = SpokenReply(1)
    for index, text in enumerate(sentences):
        reply.add_sentence(text)
        if index < len(durations):
            reply.durations_ms[index] = durations[index]
    return reply


def test_marks_echoed_in_order_move_what_was_heard_forward() -> None:
    playback = Playback()
    reply = spoken(*SENTENCES, durations=(3000.0, 1000.0))
    names = [playback.sent(reply, 0, 160.0 * i) for i in range(1, 4)]
    names.append(playback.sent(reply, 1, 160.0))
    assert names == ["1", "2", "3", "4"]
    assert playback.audible and reply.heard == (-1, 0.0)

    playback.echoed("1")
    assert reply.heard == (0, 160.0)
    playback.echoed("3")  # an echo means everything queued before it has played too
    assert reply.heard == (0, 480.0) and playback.audible
    playback.echoed("4")
    assert reply.heard == (1, 160.0)
    assert not playback.audible


def test_marks_after_a_clear_are_stale_and_ignored() -> None:
    playback = Playback()
    old = spoken(*SENTENCES)
    first, second = playback.sent(old, 0, 160.0), playback.sent(old, 0, 320.0)
    playback.echoed(first)
    # Barge-in: the session cancels the reply and clears; Twilio then echoes what was queued.
    old.cancelled = True
    playback.clear()
    assert not playback.audible
    new = spoken("Sure, take your time.")
    third = playback.sent(new, 0, 160.0)
    playback.echoed(second)
    assert old.heard == (0, 160.0)  # frozen at the clear
    assert new.heard == (-1, 0.0) and playback.audible
    playback.echoed(third)
    assert new.heard == (0, 160.0) and not playback.audible


def test_a_cancelled_reply_is_not_moved_by_late_echoes() -> None:
    playback = Playback()
    reply = spoken(*SENTENCES)
    name = playback.sent(reply, 0, 160.0)
    reply.cancelled = True
    playback.echoed(name)
    assert reply.heard == (-1, 0.0)
    assert not playback.audible


def test_unknown_mark_names_are_ignored() -> None:
    playback = Playback()
    reply = spoken(*SENTENCES)
    playback.sent(reply, 0, 160.0)
    playback.echoed("greeting-end")
    playback.echoed("")
    assert playback.audible and reply.heard == (-1, 0.0)


def test_heard_text_cuts_at_the_last_whole_word_with_an_ellipsis() -> None:
    reply = spoken(*SENTENCES, durations=(3000.0, 1000.0))
    assert reply.heard_text() == ""  # nothing played yet
    reply.heard = (0, 1500.0)  # half of the first sentence: the cut falls inside "Acme"
    assert reply.heard_text() == "Thanks for calling…"
    reply.heard = (1, 500.0)  # the cut falls just after "can": that word was heard whole
    assert reply.heard_text() == SENTENCES[0] + " How can…"
    reply.heard = (1, 1000.0)
    assert reply.heard_text() == " ".join(SENTENCES) == reply.text


def test_heard_text_is_empty_when_not_even_a_word_was_heard() -> None:
    reply = spoken("Absolutely wonderful.", durations=(2000.0,))
    reply.heard = (0, 200.0)
    assert reply.heard_text() == ""


def test_heard_text_nearly_at_the_end_counts_the_sentence_as_heard() -> None:
    reply = spoken(*SENTENCES, durations=(3000.0, 1000.0))
    reply.heard = (0, 2990.0)
    assert reply.heard_text() == SENTENCES[0]


def test_heard_text_estimates_length_while_the_sentence_is_still_synthesising() -> None:
    reply = spoken(*SENTENCES)  # no durations yet: estimated from the text's length
    reply.heard = (0, 1500.0)
    heard = reply.heard_text()
    assert heard.endswith("…") and 0 < len(heard) < len(SENTENCES[0])


async def test_wait_idle_returns_at_once_when_nothing_is_queued() -> None:
    assert await Playback().wait_idle(0.01)


async def test_wait_idle_times_out_when_marks_never_come_back() -> None:
    playback = Playback()
    playback.sent(spoken(*SENTENCES), 0, 160.0)
    started = time.perf_counter()
    assert not await playback.wait_idle(0.05)
    assert 0.04 <= time.perf_counter() - started < 0.5
    assert playback.audible


async def test_wait_idle_wakes_on_the_last_echo_and_on_clear() -> None:
    playback = Playback()
    reply = spoken(*SENTENCES)
    playback.sent(reply, 0, 160.0)
    last = playback.sent(reply, 0, 320.0)
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, playback.echoed, last)
    assert await playback.wait_idle(2.0)
    playback.sent(reply, 1, 160.0)
    loop.call_later(0.02, playback.clear)
    assert await playback.wait_idle(2.0)


async def test_a_hold_keeps_the_unheard_audio_in_order_until_resumed_or_cleared() -> None:
    playback = Playback()
    reply = spoken(*SENTENCES, durations=(3000.0, 1000.0))
    first = playback.sent(reply, 0, 160.0, b"a" * 1280)
    second = playback.sent(reply, 0, 320.0, b"b" * 1280)
    playback.sent(reply, 0, 480.0, b"c" * 1280)
    playback.echoed(first)
    assert playback.hold() == 320.0  # two 160 ms pieces not yet heard
    assert playback.holding and not playback.audible
    # Twilio returns the cleared marks: they move nothing, and the reply is not idle.
    playback.echoed(second)
    assert reply.heard == (0, 160.0)
    assert not await playback.wait_idle(0.01)
    playback.keep(reply, 1, 160.0, b"d" * 1280)  # made while held
    taken = []
    while (piece := playback.take_held()) is not None:
        taken.append((piece.sentence, piece.sentence_ms, piece.audio[:1]))
    assert taken == [(0, 320.0, b"b"), (0, 480.0, b"c"), (1, 160.0, b"d")]
    assert not playback.holding and await playback.wait_idle(0.01)

    playback.sent(reply, 1, 320.0, b"e" * 1280)
    playback.hold()
    playback.clear()  # a real interruption: nothing held is resumed
    assert not playback.holding and playback.take_held() is None
    assert await playback.wait_idle(0.01)
