"""Everything a running server shares between requests and calls, built once at start."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from prompts import AgentDefinition
from prompts.loader import load_agents
from voice_agent.agents.book import AgentBook, AgentUpdates
from voice_agent.agents.resync import AgentResync
from voice_agent.agents.studio import AgentStudio
from voice_agent.analysis.service import AnalysisService
from voice_agent.analysis.setup import build_analysis
from voice_agent.billing.notice import SuspendedNotice
from voice_agent.billing.service import Billing
from voice_agent.bus import Bus, build_bus
from voice_agent.call_actions import register_actions
from voice_agent.call_control import CallControl
from voice_agent.call_tap import CallTap
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.caller_memory.greeting import personal_phrases
from voice_agent.clock import Clock, utc_now
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.conversation.ports import CallInfo, SessionSink
from voice_agent.conversation.session import RECOVERY_PHRASES, CallSession, SessionConfig
from voice_agent.conversation.sinks import TeeSink
from voice_agent.conversation.text_mode import TextReply
from voice_agent.conversation.tryout import try_text
from voice_agent.crm.memory import crm_finder
from voice_agent.crm.service import CrmService
from voice_agent.crm.setup import build_crm
from voice_agent.drain import Drain
from voice_agent.events.emitter import Events
from voice_agent.events.setup import analysis_hook, build_events
from voice_agent.live_texts import LiveCallTexts
from voice_agent.logs import bind_call
from voice_agent.metrics import Metrics
from voice_agent.outbound.greetings import GreetingStore
from voice_agent.outbox import OutboxRepository, OutboxWorker
from voice_agent.pipelines import build_pipeline
from voice_agent.providers.base import Pipeline, ProviderError
from voice_agent.recorder import CallRecorder
from voice_agent.recordings import RecordingStore, recordings_dir
from voice_agent.redis_health import RedisHealth
from voice_agent.resume import RESUME_PATH, RESUME_PHRASE, CallResume
from voice_agent.settings import Settings
from voice_agent.sms.followup import FollowUpSink
from voice_agent.sms.sender import SmsSender
from voice_agent.sms.service import SmsService
from voice_agent.sms.thread_locks import ThreadLocks
from voice_agent.storage.agents import AgentRepository
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.journal import Journal
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.number_routing import NumberRouter
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.scheduled_calls import ScheduledCallRepository
from voice_agent.storage.sms import SmsRepository
from voice_agent.storage.tenants import Tenant, TenantRepository
from voice_agent.storage.write_queue import WriteQueue
from voice_agent.telephony.media_socket import StreamHandler, TwilioLine
from voice_agent.telephony.protocol import Start
from voice_agent.telephony.rest import TwilioRest
from voice_agent.telephony.signature import TwilioSignature, stream_url
from voice_agent.telephony.stream_claims import (
    MemoryStreamClaims,
    RedisStreamClaims,
    StreamClaims,
)
from voice_agent.telephony.tokens import (
    CallTokenStore,
    DegradingTokenStore,
    MemoryTokenStore,
    RedisTokenStore,
)
from voice_agent.telephony.warm_transfer import WarmTransfer

if TYPE_CHECKING:
    from voice_agent.conversation.realtime_session import RealtimeCallSession

log = logging.getLogger(__name__)

MEDIA_PATH = "/twilio/media"


@dataclass
class Runtime:
    settings: Settings
    database: Database
    calls: CallRepository
    writes: WriteQueue
    agents: dict[str, AgentDefinition]
    pipeline: Pipeline
    phrases: PhraseCache
    tokens: CallTokenStore
    signature: TwilioSignature | None
    rest: TwilioRest | None
    metrics: Metrics
    recorder: CallRecorder
    tenants: TenantRepository
    opt_outs: OptOutRepository
    scheduled_calls: ScheduledCallRepository
    router: NumberRouter
    redis: object | None = None
    #: One media stream per call across workers (shared through Redis when configured).
    stream_claims: StreamClaims = field(default_factory=MemoryStreamClaims)
    owns_pipeline: bool = True
    clock: Clock = utc_now
    sms: SmsService | None = None
    #: What every call reports to; the recorder alone unless more sinks are composed.
    session_sink: SessionSink | None = None
    #: Outbound calls' personal greetings, made while the phone rings (voice_agent.outbound).
    greetings: GreetingStore | None = None
    #: Where calls are recorded (None: not recorded) and how transfers are made warm.
    recordings: RecordingStore | None = None
    transfers: WarmTransfer | None = None
    #: Calls whose media stream is open in this process, by CallSid.
    live_calls: dict[str, CallTap] = field(default_factory=dict)
    bus: Bus | None = None  # live call events (dashboard); Redis pub/sub when REDIS_URL
    #: Usage, cost, Stripe and suspension (#14).
    billing: Billing | None = None
    #: Delivers what leaves the process (events, CRM, Stripe); the app lifespan starts it.
    outbox: OutboxWorker | None = None
    #: #12: post-call analysis (background) and what we know about inbound callers.
    analysis: AnalysisService | None = None
    memory: CallerMemory | None = None
    #: #12: the built-in CRM (people, notes), mirrored to Twenty through the outbox.
    crm: CrmService | None = None
    #: #15: SIGTERM drain (the app lifespan makes it); new calls refused while it runs.
    drain: Drain | None = None
    #: #15: commands to live calls on whichever worker holds them (Redis, else in-process).
    control: CallControl | None = None
    #: #15: resume a call whose stream dropped (its worker died) on any worker.
    resume: CallResume | None = None

    @property
    def resume_url(self) -> str | None:
        return self.settings.public_base_url + RESUME_PATH if self.resume is not None else None

    @property
    def draining(self) -> bool:
        return self.drain is not None and self.drain.draining

    #: #13: tenants' own agents (drafts, publishing); `agents` is then an AgentBook.
    agent_studio: AgentStudio | None = None
    agent_resync: AgentResync | None = None
    #: #12: signed events for n8n (voice_agent.events): ``runtime.events.emit(...)``.
    events: Events | None = None

    @property
    def default_agent(self) -> AgentDefinition:
        return self.agents[self.settings.default_agent]

    @property
    def media_stream_url(self) -> str:
        """The wss:// URL Twilio opens, on the public origin (TLS ends in front of us)."""
        return stream_url(self.settings.public_base_url, MEDIA_PATH)

    @property
    def session_config(self) -> SessionConfig:
        s = self.settings
        return SessionConfig(
            s.endpointing_silence_ms,
            s.barge_in_min_ms,
            s.vad_aggressiveness,
            recovery_after_s=s.recovery_phrase_after_s,
            recovery_gap_s=s.recovery_gap_s,
            failed_turns_before_end=s.provider_failed_turns_before_end,
            media_timeout_s=s.media_timeout_s,
            max_call_s=s.max_call_s,
            call_warning_s=s.call_warning_s,
            adaptive_noise_floor=s.adaptive_noise_floor,
        )

    async def open_session(
        self, start: Start, data: dict[str, str], line: TwilioLine
    ) -> StreamHandler:
        tenant = data.get("tenant", self.settings.default_tenant)
        # Every line logged for this call from here on names it (the socket's task and the
        # session's tasks, which inherit the context).
        bind_call(start.call_sid, tenant)
        found, version = self.agent_for(tenant, data.get("agent", ""))
        if data.get("draft") == "1" and self.agent_studio is not None:
            # The portal's browser tester (#13) runs the draft, not the published version.
            found = await self.agent_studio.draft_definition(tenant, data.get("agent", ""))
            version = None
        agent = found or self.default_agent
        direction = "outbound" if data.get("direction") == "outbound" else "inbound"
        variables = call_variables(data)
        phrases = self.phrases
        if self.greetings is not None:
            phrases = self.greetings.phrases_for(data.get("scheduled", ""), phrases)  # type: ignore[assignment]
            # An inbound caller we know: their greeting by name, if it is made in time.
            phrases, variables = await personal_phrases(
                self.greetings,
                data,
                phrases,
                variables,
                self.settings.caller_greeting_wait_ms / 1000,
            )
        call = CallInfo(
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            tenant=tenant,
            direction=direction,
            from_number=data.get("from", ""),
            to_number=data.get("to", ""),
            agent=agent.slug,
            pipeline=self.pipeline.name,
            variables=variables,
            agent_version=version,
            is_test=data.get("test") == "1",
        )
        resumed = data.get("resume", "") != "" and self.resume is not None
        tap = CallTap(
            call=call,
            agent=agent,
            sink=self.session_sink or self.recorder,
            line=line,
            # A resumed call's recording goes on in the same file (voice_agent.recordings).
            recordings=self.recordings,
            transfers=self.transfers,
            live=self.live_calls,
            part=_resume_count(data) if resumed else 0,
        )
        if data.get("suspended"):  # the tenant is suspended (#14): a notice, no agent
            return tap.bind(SuspendedNotice(call, agent, self.phrases, tap))
        session: CallSession | RealtimeCallSession
        if self.pipeline.realtime is not None:
            session = self._realtime_session(call, agent, phrases, tap)  # type: ignore[arg-type]
        else:
            session = CallSession(
                call=call,
                agent=agent,
                pipeline=self.pipeline,
                phrases=phrases,  # type: ignore[arg-type]
                transport=tap,
                sink=tap,
                config=_with_tenant_limit(self.session_config, data),
            )
        # Either pipeline's session goes on from the stored turns the same way.
        if resumed:
            assert self.resume is not None
            history, last_seq, started_at = await self.resume.history(start.call_sid)
            session.resume_from(history, last_seq, RESUME_PHRASE, started_at)
        return tap.bind(session)

    def _realtime_session(
        self, call: CallInfo, agent: AgentDefinition, phrases: PhraseCache, tap: CallTap
    ) -> RealtimeCallSession:
        from voice_agent.conversation.realtime_session import (
            RealtimeCallSession,
            RealtimeSessionConfig,
        )

        s = self.settings
        config = RealtimeSessionConfig(
            barge_in=s.realtime_barge_in,
            endpointing_silence_ms=s.endpointing_silence_ms,
            barge_in_min_ms=s.barge_in_min_ms,
            vad_aggressiveness=s.vad_aggressiveness,
            stall_s=s.realtime_stall_s,
        )
        return RealtimeCallSession(
            call=call,
            agent=agent,
            model=self.pipeline.realtime,
            phrases=phrases,
            transport=tap,
            sink=tap,
            config=config,
        )

    def agent_for(self, tenant: str, slug: str) -> tuple[AgentDefinition | None, int | None]:
        """A tenant's published agent (and its version), else the template (version None)."""
        if isinstance(self.agents, AgentBook):
            return self.agents.resolve(tenant, slug)
        return self.agents.get(slug), None

    async def try_text(self, agent: AgentDefinition, history: list[tuple[str, str]]) -> TextReply:
        """The portal's text tester: `agent`'s reply by text on this server's dialogue
        engine (the one SMS uses), its tools inert."""
        return await try_text(agent, self.pipeline, history)

    async def warm_greetings(self) -> None:
        """Synthesise every agent's greeting now, so a call's first audio waits on nothing."""
        for agent in self.agents.values():
            await self.warm_greeting(agent)
        if isinstance(self.agents, AgentBook):
            for _, agent, _ in self.agents.published():
                await self.warm_greeting(agent)

    async def warm_greeting(self, agent: AgentDefinition) -> None:
        await self.phrases.get(agent.render_speech(agent.greeting), agent.voice)
        # What a call says when its providers fail must not need them (#16); cached once
        # per voice, so a second agent on the same voice costs nothing here.
        for text in RECOVERY_PHRASES:
            try:
                await self.phrases.get(text, agent.voice)
            except ProviderError as exc:
                log.warning("recovery phrase not cached (made on first use): %s", exc)

    async def agent_published(self, tenant: str, slug: str) -> None:
        """A tenant's agent was published (here or in another worker): use it, and have
        its greeting ready before the next call asks for it."""
        if self.agent_studio is None or not isinstance(self.agents, AgentBook):
            return
        await self.agents.refresh(self.agent_studio.repo, tenant, slug, self.warm_greeting)

    async def aclose(self) -> None:
        if self.agent_resync is not None:
            await self.agent_resync.aclose()
        if self.agent_studio is not None:
            await self.agent_studio.updates.aclose()
        if self.analysis is not None:
            await self.analysis.aclose()
        if self.events is not None:
            await self.events.aclose()
        if self.sms is not None:
            await self.sms.aclose()
        if self.recordings is not None:
            await self.recordings.drain()
        if self.control is not None:
            await self.control.aclose()
        if self.bus is not None:
            await self.bus.aclose()
        if self.billing is not None:
            await self.billing.aclose()
        if self.crm is not None:
            await self.crm.aclose()
        unwritten = await self.writes.aclose()
        if unwritten:
            log.error("%d call records could not be written before shutdown", unwritten)
        await self.database.dispose()
        if self.rest is not None:
            await self.rest.aclose()
        if self.redis is not None:
            await self.redis.aclose()  # type: ignore[attr-defined]
        if self.owns_pipeline:
            await self.pipeline.aclose()


def _resume_count(data: dict[str, str]) -> int:
    """How many times the call was resumed (the resume webhook counts them in the token)."""
    raw = data.get("resumes", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def _with_tenant_limit(config: SessionConfig, data: dict[str, str]) -> SessionConfig:
    """The tenant's own longest call (#16), carried from the voice webhook in the token."""
    try:
        limit = int(data.get("max_call_s") or 0)
    except ValueError:
        return config
    return dataclasses.replace(config, max_call_s=limit) if limit > 0 else config


async def build_runtime(
    settings: Settings, pipeline: Pipeline | None = None, clock: Clock = utc_now
) -> Runtime:
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    calls = CallRepository(database)
    journal = None
    if settings.write_journal_enabled:
        journal = Journal.claim(settings.write_journal_dir or Path(settings.data_dir) / "journal")
    writes = WriteQueue(calls, journal=journal, memory_limit=settings.write_memory_limit)
    writes.start()
    templates = load_agents()
    if settings.default_agent not in templates:
        raise ValueError(f"DEFAULT_AGENT: no agent definition named {settings.default_agent!r}")
    owns_pipeline = pipeline is None
    if pipeline is None:
        pipeline = await build_pipeline(settings)
    # Built for the pipeline calls run on, so each agent speaks with its voice for it.
    agents = AgentBook(templates, pipeline.name)
    redis_client = None
    redis_health = RedisHealth()
    tokens: CallTokenStore
    claims: StreamClaims
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.from_url(settings.redis_url)
        tokens = DegradingTokenStore(RedisTokenStore(redis_client), redis_health)
        # Held as long as any call may last: a dead worker's claim blocks only replays.
        claims = RedisStreamClaims(
            redis_client, redis_health, ttl_s=2 * max(settings.max_call_s, 3600)
        )
    else:
        tokens = MemoryTokenStore()
        claims = MemoryStreamClaims()
    signature = (
        TwilioSignature(settings.twilio_auth_token, settings.public_base_url)
        if settings.twilio_auth_token
        else None
    )
    rest = (
        TwilioRest(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_base_url,
        )
        if settings.twilio_account_sid and settings.twilio_auth_token
        else None
    )
    metrics = Metrics()
    redis_health.on_error = lambda part: metrics.redis_errors.labels(part).inc()
    redis_health.on_state = lambda up: metrics.redis_up.set(1 if up else 0)
    bus = build_bus(redis_client, redis_health)
    await bus.start()
    tenants = TenantRepository(database)
    runtime = Runtime(
        settings=settings,
        database=database,
        calls=calls,
        writes=writes,
        agents=agents,
        pipeline=pipeline,
        phrases=PhraseCache(pipeline.tts),
        tokens=tokens,
        signature=signature,
        rest=rest,
        metrics=metrics,
        recorder=CallRecorder(
            writes,
            metrics,
            bus,
            metering=settings.metering_enabled,
            report_usage=bool(settings.stripe_api_key),
        ),
        tenants=tenants,
        opt_outs=OptOutRepository(database),
        scheduled_calls=ScheduledCallRepository(database),
        router=NumberRouter(tenants, on_stale=metrics.stale_routes.inc),
        redis=redis_client,
        stream_claims=claims,
        owns_pipeline=owns_pipeline,
        clock=clock,
        bus=bus,
    )
    if settings.recordings_enabled:
        runtime.recordings = RecordingStore(
            recordings_dir(settings.recordings_dir, settings.data_dir),
            calls,
            runtime.tenants,
            writes,
        )
    if rest is not None:
        # Without REST credentials the line's own transfer logs why and hangs up.
        runtime.transfers = WarmTransfer(
            rest, tokens, settings.public_base_url, settings.transfer_ring_s
        )
    runtime.resume = CallResume(calls, redis_client)
    runtime.control = CallControl(runtime.live_calls, redis_client)
    register_actions(runtime.control, runtime.phrases)
    await runtime.control.start()
    runtime.outbox = OutboxWorker(OutboxRepository(database))
    calls.on_outbox = runtime.outbox.wake_all
    await runtime.tenants.ensure(default_tenant(settings, agents))
    agent_repo = AgentRepository(database)
    await agents.load(agent_repo)
    runtime.agent_studio = AgentStudio(
        agent_repo,
        agents,
        AgentUpdates(redis_client, settings.agent_updates_channel, runtime.agent_published),
    )
    await runtime.agent_studio.updates.start()
    runtime.agent_resync = AgentResync(
        agents, agent_repo, runtime.agent_published, settings.agent_resync_s
    )
    runtime.agent_resync.start()
    runtime.billing = Billing(database, settings, clock)
    meter_events = runtime.billing.meter_delivery()
    if meter_events is not None:
        runtime.outbox.register(meter_events)
    runtime.sms = _sms_service(runtime)
    runtime.sms.live_call = LiveCallTexts(calls, runtime.control, runtime.live_calls).deliver
    runtime.memory = CallerMemory(crm_finder(database), settings.caller_memory_ttl_s)
    runtime.crm = build_crm(settings, database, runtime.outbox, runtime.memory, clock, redis_client)
    runtime.crm.start(database)  # leads and calls whose CRM write was missed
    runtime.events, call_events = await build_events(runtime)
    sinks: list[SessionSink] = [runtime.recorder, call_events, FollowUpSink(runtime.sms)]
    if settings.analysis_enabled:
        runtime.analysis = build_analysis(settings, database, writes, agents, runtime.memory, clock)
        runtime.analysis.on_analyzed.append(runtime.crm.analysis_hook)
        runtime.analysis.on_analyzed.append(analysis_hook(runtime.events))
        runtime.analysis.start()
        sinks.append(runtime.analysis)
    runtime.session_sink = TeeSink(*sinks)
    await runtime.warm_greetings()
    return runtime


def _sms_service(runtime: Runtime) -> SmsService:
    settings = runtime.settings
    sender = SmsSender(
        SmsRepository(runtime.database, report_usage=runtime.billing.reports_usage),
        runtime.opt_outs,
        runtime.rest,
        settings.public_base_url,
        settings.twilio_from_number,
    )
    return SmsService(
        agents=runtime.agents,
        default_agent=settings.default_agent,
        default_tenant=settings.default_tenant,
        pipeline=runtime.pipeline,
        tenants=runtime.tenants,
        opt_outs=runtime.opt_outs,
        scheduled=runtime.scheduled_calls,
        repo=SmsRepository(runtime.database, report_usage=runtime.billing.reports_usage),
        sender=sender,
        reply_within_s=settings.sms_reply_within_s,
        replies_per_minute=settings.sms_replies_per_minute,
        clock=runtime.clock,
        thread_locks=ThreadLocks(runtime.redis),  # type: ignore[arg-type]
        billing=runtime.billing,
    )


def call_variables(data: dict[str, str]) -> dict[str, str]:
    """The prompt variables a voice webhook put in the call's token (outbound: the lead)."""
    raw = data.get("vars")
    if not raw:
        return {}
    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(values, dict):
        return {}
    return {str(k): str(v) for k, v in values.items() if isinstance(v, str)}


def default_tenant(settings: Settings, agents: dict[str, AgentDefinition]) -> Tenant:
    """The tenant an embedded install starts with, so calls have an owner before any setup."""
    outbound = "lead_qualifier" if "lead_qualifier" in agents else settings.default_agent
    return Tenant(
        slug=settings.default_tenant,
        name=settings.default_tenant.replace("-", " ").title(),
        agent=settings.default_agent,
        outbound_agent=outbound,
    )
