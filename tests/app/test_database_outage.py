"""PostgreSQL going away mid-call must not touch the call; the records wait in memory
and all land, in order, once the database is back."""

from __future__ import annotations

from collections.abc import Callable

from loadtest.fixtures import load_script
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import SILENCE_FRAME, issue_token, new_call_sid, open_stream, until
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.settings import Settings
from voice_agent.storage.metering import UsageRepository


async def test_call_survives_a_database_outage(
    cascade_settings: Callable[..., Settings],
    standin: StandinOpenAI,
    pg_proxy: TcpProxy,
    pg_database: str,
) -> None:
    settings = cascade_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{pg_database}"
    )
    standin.add_script("I need help with a leaking roof")
    async with running_server(settings) as runtime:
        turns = runtime.metrics.registry

        def agent_turns() -> float:
            return turns.get_sample_value("voice_agent_turns_total", {"role": "agent"}) or 0.0

        call_sid = new_call_sid()
        stream = await open_stream(settings, call_sid)
        await stream.start(await issue_token(settings, call_sid))
        await until(lambda: agent_turns() == 1, what="the greeting, heard")
        assert await runtime.writes.flush(5.0)  # the call row exists before the outage

        await pg_proxy.cut()
        greeting_bytes = len(stream.agent_audio)
        await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
        await until(lambda: agent_turns() == 2, what="a reply while the database is down")
        assert len(stream.agent_audio) > greeting_bytes
        await stream.stop()
        await until(stream.closed.is_set, what="the call to end")
        assert stream.close_code == 1000

        # Nothing could be written: the caller turn, the reply and the end all wait, and
        # so does the turn's usage (its STT, LLM and TTS rows).
        await until(lambda: not runtime.writes.healthy, what="the write queue to see the outage")
        waiting = runtime.writes.pending
        assert not await runtime.writes.flush(0.2)

        await pg_proxy.restore()
        assert await runtime.writes.flush(10.0)
        assert runtime.writes.pending == 0 and runtime.writes.rejected == 0
        stored = await runtime.calls.get_call(call_sid)
        usage = await UsageRepository(runtime.database).rows_for_call(call_sid)

    assert {r.meter for r in usage} >= {"stt_seconds", "llm_input_tokens", "tts_characters"}
    assert waiting == 3 + len(usage)

    assert stored is not None
    assert stored.end_reason == "caller-hangup" and stored.status == "completed"
    assert [t.role for t in stored.turns] == ["agent", "caller", "agent"]
    assert stored.turns[1].text == "I need help with a leaking roof"
    assert stored.turns[2].text.startswith("I heard you say I need help")
    assert stored.turns[2].total_ms is not None
