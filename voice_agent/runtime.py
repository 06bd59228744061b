"""Everything a running server shares between requests and calls, built once at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson

from prompts import AgentDefinition
from prompts.loader import load_agents
from voice_agent.analysis.service import AnalysisService
from voice_agent.analysis.setup import build_analysis
from voice_agent.billing.notice import SuspendedNotice
from voice_agent.billing.service import Billing
from voice_agent.bus import Bus, build_bus
from voice_agent.call_tap import CallTap
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.caller_memory.greeting import personal_phrases
from voice_agent.caller_memory.lookup import database_finder
from voice_agent.clock import Clock, utc_now
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.conversation.ports import CallInfo, SessionSink
from voice_agent.conversation.session import CallSession, SessionConfig
from voice_agent.conversation.sinks import TeeSink
from voice_agent.metrics import Metrics
from voice_agent.outbound.greetings import GreetingStore
from voice_agent.outbox import OutboxRepository, OutboxWorker
from voice_agent.pipelines import build_pipeline
from voice_agent.providers.base import Pipeline
from voice_agent.recorder import CallRecorder
from voice_agent.recordings import RecordingStore, recordings_dir
from voice_agent.settings import Settings
from voice_agent.sms.followup import FollowUpSink
from voice_agent.sms.sender import SmsSender
from voice_agent.sms.service import SmsService
from voice_agent.sms.thread_locks import ThreadLocks
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
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
from voice_agent.telephony.tokens import CallTokenStore, MemoryTokenStore, RedisTokenStore
from voice_agent.telephony.warm_transfer import WarmTransfer

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
            adaptive_noise_floor=s.adaptive_noise_floor,
        )

    async def open_session(
        self, start: Start, data: dict[str, str], line: TwilioLine
    ) -> StreamHandler:
        agent = self.agents.get(data.get("agent", ""), self.default_agent)
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
            tenant=data.get("tenant", self.settings.default_tenant),
            direction=direction,
            from_number=data.get("from", ""),
            to_number=data.get("to", ""),
            agent=agent.slug,
            pipeline=self.pipeline.name,
            variables=variables,
        )
        tap = CallTap(
            call=call,
            agent=agent,
            sink=self.session_sink or self.recorder,
            line=line,
            recordings=self.recordings,
            transfers=self.transfers,
            live=self.live_calls,
        )
        if data.get("suspended"):  # the tenant is suspended (#14): a notice, no agent
            return tap.bind(SuspendedNotice(call, agent, self.phrases, tap))
        session = CallSession(
            call=call,
            agent=agent,
            pipeline=self.pipeline,
            phrases=phrases,  # type: ignore[arg-type]
            transport=tap,
            sink=tap,
            config=self.session_config,
        )
        return tap.bind(session)

    async def warm_greetings(self) -> None:
        """Synthesise every agent's greeting now, so a call's first audio waits on nothing."""
        for agent in self.agents.values():
            await self.phrases.get(agent.render_speech(agent.greeting), agent.voice)

    async def aclose(self) -> None:
        if self.analysis is not None:
            await self.analysis.aclose()
        if self.sms is not None:
            await self.sms.aclose()
        if self.recordings is not None:
            await self.recordings.drain()
        if self.bus is not None:
            await self.bus.aclose()
        if self.billing is not None:
            await self.billing.aclose()
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


async def build_runtime(
    settings: Settings, pipeline: Pipeline | None = None, clock: Clock = utc_now
) -> Runtime:
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    calls = CallRepository(database)
    writes = WriteQueue(calls)
    writes.start()
    agents = load_agents()
    if settings.default_agent not in agents:
        raise ValueError(f"DEFAULT_AGENT: no agent definition named {settings.default_agent!r}")
    owns_pipeline = pipeline is None
    if pipeline is None:
        pipeline = await build_pipeline(settings)
    redis_client = None
    tokens: CallTokenStore
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.from_url(settings.redis_url)
        tokens = RedisTokenStore(redis_client)
    else:
        tokens = MemoryTokenStore()
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
    bus = build_bus(redis_client)
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
    runtime.outbox = OutboxWorker(OutboxRepository(database))
    calls.on_outbox = runtime.outbox.wake_all
    await runtime.tenants.ensure(default_tenant(settings, agents))
    runtime.billing = Billing(database, settings, clock)
    meter_events = runtime.billing.meter_delivery()
    if meter_events is not None:
        runtime.outbox.register(meter_events)
    runtime.sms = _sms_service(runtime)
    runtime.memory = CallerMemory(database_finder(database), settings.caller_memory_ttl_s)
    sinks: list[SessionSink] = [runtime.recorder, FollowUpSink(runtime.sms)]
    if settings.analysis_enabled:
        runtime.analysis = build_analysis(settings, database, writes, agents, runtime.memory, clock)
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
