"""Post-call analysis storage and its worker, on SQLite and PostgreSQL: what is pending,
claims, the stored record and the lead's status; the worker finding calls that ended
before it started (a restart), riding out a database outage, and the model's structured
reply through the openai SDK against the stand-in (valid, malformed once, malformed
twice, unavailable)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from loadtest.standins.openai_server import Latency, StandinOpenAI
from prompts import load_agents
from tests.storage.conftest import pg_url
from tests.tcp_proxy import TcpProxy
from voice_agent.analysis.llm import LlmAnalyser
from voice_agent.analysis.offline import PlaybookAnalyser
from voice_agent.analysis.service import AnalysedCall, Analyser, AnalysisService
from voice_agent.providers.openai.client import make_client
from voice_agent.storage.analyses import AnalysisRepository
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.records import CallEnded, CallStarted, TurnRecord

AGENTS = load_agents()
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CONVERSATION = (
    ("agent", "Thanks for calling Acme Home Services, this is Joe. Who am I speaking with?"),
    ("caller", "Hi, my name is Sarah Johnson."),
    ("agent", "Nice to meet you, Sarah. What can we help you with today?"),
    ("caller", "I need help with a leaking roof at my house."),
    ("agent", "Got it. Do you have a rough budget in mind for the project?"),
    ("caller", "My budget is about five thousand dollars."),
    ("agent", "Thanks. And when are you hoping to get the work done?"),
    ("caller", "Sometime in the next two weeks would be great."),
    ("agent", "Would you like me to connect you with a project manager now?"),
    ("caller", "No thanks, goodbye."),
)


def now() -> datetime:
    return datetime.now(UTC)


async def store_call(
    db: Database,
    sid: str,
    turns: tuple[tuple[str, str], ...] = CONVERSATION,
    *,
    lead_id: int | None = None,
    direction: str = "inbound",
    end_reason: str = "agent-hangup",
    ended: bool = True,
) -> None:
    at = now() - timedelta(minutes=5)
    records: list[object] = [
        CallStarted(
            sid, "acme", direction, "+15551230001", "+15557654321", "receptionist", "offline", at
        )
    ]
    for seq, (role, text) in enumerate(turns, 1):
        records.append(TurnRecord(sid, seq, role, text, at + timedelta(seconds=seq)))
    if ended:
        records.append(CallEnded(sid, at + timedelta(minutes=1), "completed", end_reason))
    repo = CallRepository(db)
    await repo.write(records)  # type: ignore[arg-type]
    if lead_id is not None:
        await repo.set_call_facts(sid, lead_id=lead_id)


def service(db: Database, analyser: Analyser, **options: object) -> AnalysisService:
    return AnalysisService(
        AnalysisRepository(db),
        analyser,
        lambda tenant, slug: AGENTS.get(slug),
        poll_s=0.05,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def playbook_service(db: Database) -> AsyncIterator[AnalysisService]:
    worker = service(db, PlaybookAnalyser())
    yield worker
    await worker.aclose()


# --- the repository -----------------------------------------------------------------


async def test_pending_claim_and_store_move_the_lead(db: Database) -> None:
    leads = LeadRepository(db)
    lead_id = await leads.add(Lead("acme", "Sarah", "+15551230001", "Johnson", status="calling"))
    await store_call(db, "CA-done", lead_id=lead_id)
    await store_call(db, "CA-live", ended=False)
    repo = AnalysisRepository(db)
    since = now() - timedelta(days=1)
    assert await repo.pending(since) == ["CA-done"]  # a call still going is not pending

    assert await repo.claim("CA-done", now(), timedelta(minutes=5))
    assert not await repo.claim("CA-done", now(), timedelta(minutes=5))  # held
    # A claim older than the lease is a dead worker's: taken over.
    assert await repo.claim("CA-done", now() + timedelta(minutes=6), timedelta(minutes=5))
    await repo.release("CA-done")
    assert await repo.claim("CA-done", now(), timedelta(minutes=5))

    material = await repo.load("CA-done")
    assert material is not None and material.lead_name == "Sarah Johnson"
    document = {"summary": "Roof leak.", "outcome": "qualified", "fields": {"need": "roof"}}
    stored = await repo.store("CA-done", document, now())
    assert stored is not None and stored.lead_status == "qualified"
    assert (stored.tenant, stored.number) == ("acme", "+15551230001")
    assert await repo.pending(since) == []
    lead = await leads.get(lead_id)
    assert lead is not None and lead.status == "qualified"
    facts = await CallRepository(db).call_facts("CA-done")
    assert facts is not None and (facts["outcome"], facts["summary"]) == ("qualified", "Roof leak.")
    call = await CallRepository(db).get_call("CA-done")
    assert call is not None and call.analysis == document
    assert not await repo.claim("CA-done", now(), timedelta(0))  # analysed: never again


async def test_an_opted_out_lead_keeps_its_status(db: Database) -> None:
    leads = LeadRepository(db)
    lead_id = await leads.add(Lead("acme", "Sam", "+15551230001", status="opted-out"))
    await store_call(db, "CA-stop", lead_id=lead_id)
    repo = AnalysisRepository(db)
    stored = await repo.store(
        "CA-stop", {"summary": "", "outcome": "callback", "fields": {}}, now()
    )
    assert stored is not None and stored.lead_status is None
    lead = await leads.get(lead_id)
    assert lead is not None and lead.status == "opted-out"


# --- the worker, offline ------------------------------------------------------------


async def test_calls_that_ended_before_the_worker_started_are_analysed(
    db: Database, playbook_service: AnalysisService
) -> None:
    # Stored while no worker ran (a restart): found on start, not only on a call's end.
    await store_call(db, "CA-a")
    await store_call(db, "CA-b", turns=CONVERSATION[:1])  # the caller said nothing
    seen: list[AnalysedCall] = []

    async def hook(done: AnalysedCall) -> None:
        seen.append(done)

    playbook_service.on_analyzed.append(hook)
    playbook_service.start()
    assert await playbook_service.idle(10)
    calls = CallRepository(db)
    a = await calls.get_call("CA-a")
    assert a is not None and a.analysis is not None
    assert a.analysis["source"] == "playbook"
    assert a.analysis["fields"]["name"] == "Sarah Johnson"
    assert a.analysis["fields"]["budget"]
    # The caller declined the transfer with every answer given: qualified, called back.
    assert a.analysis["outcome"] == "qualified"
    b = await calls.get_call("CA-b")
    assert b is not None and b.analysis is not None
    assert (b.analysis["outcome"], b.analysis["source"]) == ("other", "facts")
    assert sorted(d.call_sid for d in seen) == ["CA-a", "CA-b"]
    assert all(d.analysis["outcome"] for d in seen)


async def test_transfer_and_not_interested_outcomes(
    db: Database, playbook_service: AnalysisService
) -> None:
    await store_call(
        db,
        "CA-transfer",
        (*CONVERSATION[:2], ("caller", "Can I talk to a real person please?")),
        end_reason="transfer",
    )
    await store_call(
        db, "CA-no", (*CONVERSATION[:2], ("caller", "I'm not interested, please stop calling."))
    )
    playbook_service.start()
    assert await playbook_service.idle(10)
    calls = CallRepository(db)
    transferred = await calls.get_call("CA-transfer")
    declined = await calls.get_call("CA-no")
    assert transferred is not None and transferred.analysis is not None
    assert transferred.analysis["outcome"] == "transferred"
    assert transferred.analysis["fields"]["interest_level"] == "high"
    assert declined is not None and declined.analysis is not None
    assert declined.analysis["outcome"] == "not-interested"
    assert declined.analysis["fields"]["interest_level"] == "low"


# --- the worker, with the model -----------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[StandinOpenAI]:
    async with StandinOpenAI(Latency(llm_first_token_ms=30.0, llm_token_ms=1.0)) as server:
        yield server


@pytest.fixture
async def llm_service(db: Database, api: StandinOpenAI) -> AsyncIterator[AnalysisService]:
    client = make_client(api.api_key, api.base_url, timeout=5.0)
    worker = service(db, LlmAnalyser(client, "gpt-4o-mini", timeout=5.0))
    yield worker
    await worker.aclose()


async def test_structured_reply_is_stored_with_its_request(
    db: Database, api: StandinOpenAI, llm_service: AnalysisService
) -> None:
    await store_call(db, "CA-llm")
    llm_service.start()
    assert await llm_service.idle(10)
    call = await CallRepository(db).get_call("CA-llm")
    assert call is not None and call.analysis is not None
    analysis = call.analysis
    assert analysis["source"] == "llm" and "reason" not in analysis
    # Read from the conversation by the stand-in, as a model would.
    assert analysis["fields"]["name"] == "Sarah Johnson"
    assert analysis["fields"]["budget"] == "five thousand dollars"
    assert "two weeks" in analysis["fields"]["timeline"]
    assert "roof" in analysis["fields"]["need"]
    assert analysis["fields"]["emergency"] is True  # a leaking roof
    assert analysis["outcome"] == "qualified"
    assert "Sarah Johnson" in analysis["summary"]
    request = analysis["request"]
    assert request["attempts"] == 1 and request["model"] == "gpt-4o-mini"
    assert request["ms"] >= 30.0 and request["input_tokens"] > 100 and request["output_tokens"] > 10
    # One request, JSON-schema response format in strict mode, from the agent's fields.
    sent = api.recorded("chat")
    assert len(sent) == 1
    response_format = sent[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["fields"]["required"] == [
        "name",
        "need",
        "budget",
        "timeline",
        "emergency",
        "interest_level",
    ]
    assert "Caller: I need help with a leaking roof" in sent[0].body["messages"][1]["content"]


async def test_a_malformed_reply_is_asked_again_once(
    db: Database, api: StandinOpenAI, llm_service: AnalysisService
) -> None:
    api.malform_structured("not-json")
    await store_call(db, "CA-retry")
    llm_service.start()
    assert await llm_service.idle(10)
    call = await CallRepository(db).get_call("CA-retry")
    assert call is not None and call.analysis is not None
    assert call.analysis["outcome"] == "qualified"
    assert call.analysis["request"]["attempts"] == 2
    assert len(api.recorded("chat")) == 2


async def test_two_malformed_replies_store_other_with_the_reason(
    db: Database, api: StandinOpenAI, llm_service: AnalysisService
) -> None:
    api.malform_structured("not-json", "wrong-shape")
    await store_call(db, "CA-bad")
    llm_service.start()
    assert await llm_service.idle(10)
    call = await CallRepository(db).get_call("CA-bad")
    assert call is not None and call.analysis is not None
    assert call.analysis["outcome"] == "other"
    assert "no valid analysis after 2 replies" in call.analysis["reason"]
    assert "extra" in call.analysis["reason"]  # the second reply's fault is the one named
    assert set(call.analysis["fields"]) == {
        "name",
        "need",
        "budget",
        "timeline",
        "emergency",
        "interest_level",
    }
    assert len(api.recorded("chat")) == 2  # not a third time


async def test_the_model_unavailable_postpones_the_analysis(
    db: Database, api: StandinOpenAI, llm_service: AnalysisService
) -> None:
    api.fail("chat", status=503, times=1)
    await store_call(db, "CA-later")
    llm_service.start()
    # The first round meets the 503 and gives the call back; a later round analyses it.
    assert await llm_service.idle(15)
    call = await CallRepository(db).get_call("CA-later")
    assert call is not None and call.analysis is not None
    assert call.analysis["outcome"] == "qualified"
    assert len(api.recorded("chat")) == 2


# --- the database going away --------------------------------------------------------


@pytest.mark.postgres
async def test_a_database_outage_delays_the_analysis_and_loses_nothing(
    pg_session_database: str, pg_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    direct = await Database.connect(pg_url(pg_session_database))
    proxied = await Database.connect(
        pg_url(pg_session_database, port=pg_proxy.port), connect_timeout=1
    )
    worker = service(proxied, PlaybookAnalyser())
    try:
        await pg_proxy.cut()
        worker.start()
        await store_call(direct, "CA-outage")  # stored while the worker cannot reach it
        with caplog.at_level(logging.WARNING, "voice_agent.analysis.service"):
            await asyncio.sleep(1.0)
            assert "call analysis paused" in caplog.text
        call = await CallRepository(direct).get_call("CA-outage")
        assert call is not None and call.analysis is None
        await pg_proxy.restore()
        worker.wake()
        assert await worker.idle(20)
        call = await CallRepository(direct).get_call("CA-outage")
        assert call is not None and call.analysis is not None
        assert call.analysis["outcome"] == "qualified"
    finally:
        await worker.aclose()
        await proxied.dispose()
        await direct.dispose()
