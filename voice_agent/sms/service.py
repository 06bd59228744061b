"""One inbound text, from webhook to reply: route, store, keywords, limits, the agent.

Order matters for compliance: the message is stored first, then compliance keywords are
acted on before any model sees the text, then an opted-out number, a thread handed to
staff or a number over its rate limit gets no reply. Only then does the agent answer.

Keyword decisions (see keywords.py for the matching rule):
- Opt-out (STOP…): recorded per tenant, pending scheduled calls to the number cancelled, and
  NO reply of ours: Twilio's SMS STOP filtering already sends the carrier-approved
  confirmation and blocks the number, so our own would be refused (error 21610) or be a
  second confirmation. Nothing is sent to the number afterwards from any path.
- Opt-in (START, YES, UNSTOP): only when the number is opted out (otherwise "yes" is an
  answer for the agent); recorded, and again Twilio sends the confirmation.
- HELP, INFO: the tenant's sms_help_text (or a default naming the tenant), not when the
  number is opted out (Twilio does not answer HELP then either).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from prompts import AgentDefinition
from voice_agent.agents.book import lookup as tenant_agent
from voice_agent.billing.service import Billing
from voice_agent.clock import Clock, utc_now
from voice_agent.conversation.ports import CallInfo
from voice_agent.conversation.text_mode import TextAgent, TextReply, ThreadTurn
from voice_agent.providers.base import Pipeline
from voice_agent.sms.keywords import Keyword, classify
from voice_agent.sms.segments import count_segments
from voice_agent.sms.sender import SmsSender, TextHook
from voice_agent.sms.thread_locks import ThreadLocks
from voice_agent.sms.toolbox import ThreadTools, local_zone
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.records import UsageRecord
from voice_agent.storage.scheduled_calls import ScheduledCallRepository
from voice_agent.storage.sms import DuplicateMessage, SmsMessage, SmsRepository, SmsThread
from voice_agent.storage.tenants import Tenant, TenantRepository, UnknownTenant

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_HELP = (
    "{name}: text us here with any question, or call this number. "
    "Reply STOP to opt out. Msg & data rates may apply."
)
MEDIA_ACK = "Thanks, we got your {what}. A member of our team will take a look."
#: The one reply a number gets while the tenant is suspended (#14).
SUSPENDED_REPLY = (
    "Thanks for your message. {name} can't reply by text right now; please try again later."
)
#: How much of a thread the agent reads.
HISTORY_LIMIT = 40
_RATE_WINDOW = timedelta(minutes=1)
_TWILIO_VERDICTS = {
    "STOP": Keyword("opt_out", "STOP"),
    "START": Keyword("opt_in", "START"),
    "HELP": Keyword("help", "HELP"),
}


class SmsUnavailable(Exception):
    """Storage could not be reached: nothing can be checked (opt-outs), so nothing is sent."""


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_sid: str
    from_number: str
    to_number: str
    body: str
    #: (url, content type) per attachment.
    media: tuple[tuple[str, str], ...] = ()
    #: Twilio's Advanced Opt-Out verdict ("STOP", "START", "HELP") when it matched one of
    #: the account's own keywords; honoured even where our rule would not match.
    opt_out_type: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundSms:
        """Read Twilio's incoming-message parameters; ValueError names missing fields."""
        missing = [name for name in ("MessageSid", "From", "To") if not form.get(name)]
        if missing:
            raise ValueError("missing " + ", ".join(missing))
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError:
            raise ValueError("NumMedia must be a whole number") from None
        media = tuple(
            (form[f"MediaUrl{i}"], form.get(f"MediaContentType{i}", ""))
            for i in range(max(0, min(count, 10)))
            if form.get(f"MediaUrl{i}")
        )
        return cls(
            form["MessageSid"],
            form["From"],
            form["To"],
            form.get("Body", ""),
            media,
            form.get("OptOutType", "").strip().upper(),
        )


@dataclass(frozen=True, slots=True)
class InlineReply:
    """A reply to put in the webhook's TwiML <Message>."""

    body: str
    status_callback: str


class SmsService:
    """Owns the SMS conversations of one server process and the tasks that finish them."""

    def __init__(
        self,
        *,
        agents: Mapping[str, AgentDefinition],
        default_agent: str,
        default_tenant: str,
        pipeline: Pipeline,
        tenants: TenantRepository,
        opt_outs: OptOutRepository,
        scheduled: ScheduledCallRepository,
        repo: SmsRepository,
        sender: SmsSender,
        reply_within_s: float,
        replies_per_minute: int,
        clock: Clock = utc_now,
        thread_locks: ThreadLocks | None = None,
        billing: Billing | None = None,
    ) -> None:
        self._clock = clock
        self._billing = billing
        self._agents = agents
        self._default_agent = default_agent
        self._default_tenant = default_tenant
        self._pipeline = pipeline
        self._tenants = tenants
        self._opt_outs = opt_outs
        self._scheduled = scheduled
        self._repo = repo
        self.sender = sender
        self._within = reply_within_s
        self._per_minute = replies_per_minute
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks = thread_locks or ThreadLocks()
        self._closing = False
        #: Told of every text stored in and handed to Twilio out ("sms.received",
        #: "sms.sent"), for the events package; must not block.
        self.on_text: TextHook | None = None
        #: (tenant, texter, business number, text) -> whether a live call took the text
        #: (voice_agent.live_texts); then the agent answers it by voice, not by SMS.
        self.live_call: Callable[[str, str, str, str], Awaitable[object | None]] | None = None

    # --- inbound ---------------------------------------------------------------------------

    async def receive(self, sms: InboundSms) -> InlineReply | None:
        """Handle one incoming text; the reply to send in the webhook's answer, if any.
        Raises SmsUnavailable when the database is down (fail closed: no opt-out check,
        no reply)."""
        try:
            return await self._receive(sms)
        except (SQLAlchemyError, OSError) as exc:
            raise SmsUnavailable(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc

    async def _receive(self, sms: InboundSms) -> InlineReply | None:
        routed = await self._route(sms.to_number)
        if routed is None:
            log.warning(
                "sms %s from %s to %s: no tenant owns that number; ignored",
                sms.message_sid,
                sms.from_number,
                sms.to_number,
            )
            return None
        tenant, agent_slug = routed
        thread = await self._repo.open_thread(
            tenant.slug, sms.from_number, sms.to_number, agent_slug
        )
        try:
            received = await self._repo.add_message(
                thread.id,
                direction="inbound",
                body=sms.body,
                status="received",
                segments=count_segments(sms.body).segments if sms.body else 1,
                media_urls=[url for url, _ in sms.media],
                message_sid=sms.message_sid,
            )
        except DuplicateMessage:
            log.info("sms %s already received (Twilio retry); not answered twice", sms.message_sid)
            return None
        if self.on_text is not None:
            self.on_text("sms.received", thread, received)

        number = sms.from_number
        keyword = classify(sms.body) or _TWILIO_VERDICTS.get(sms.opt_out_type)
        opted_out = await self._opt_outs.is_opted_out(tenant.slug, number)
        if keyword is not None and keyword.kind == "opt_out":
            await self._opt_outs.record(tenant.slug, number, opted_out=True, keyword=keyword.word)
            cancelled = await self._scheduled.cancel_pending(tenant.slug, number)
            log.info(
                "sms: %s opted out of %s (%s); %d scheduled calls cancelled",
                number,
                tenant.slug,
                keyword.word,
                cancelled,
            )
            return None
        if keyword is not None and keyword.kind == "opt_in" and opted_out:
            await self._opt_outs.record(tenant.slug, number, opted_out=False, keyword=keyword.word)
            log.info("sms: %s opted back in to %s (%s)", number, tenant.slug, keyword.word)
            return None
        if opted_out:
            log.info("sms from %s (%s): opted out; stored, not answered", number, tenant.slug)
            return None
        if keyword is not None and keyword.kind == "help":
            help_text = tenant.sms_help_text or DEFAULT_HELP.format(name=tenant.name)
            return await self._fixed_reply(thread, tenant, help_text)
        if await self._to_live_call(tenant, sms):
            return None  # answered by voice in the call; stored in the thread all the same
        suspended = await self._suspended_since(tenant.slug)
        if suspended is not None:
            if await self._repo.outbound_since(thread.id, suspended):
                return None  # told once already; stored, not answered
            return await self._fixed_reply(thread, tenant, SUSPENDED_REPLY.format(name=tenant.name))
        if thread.state != "agent":
            log.info("sms thread %d is with staff (%s); agent silent", thread.id, thread.state)
            return None
        if sms.media and not sms.body.strip():
            what = "picture" if all(t.startswith("image/") for _, t in sms.media) else "file"
            if len(sms.media) > 1:
                what += "s"
            return await self._fixed_reply(thread, tenant, MEDIA_ACK.format(what=what))

        task = self._spawn(self._agent_reply(thread, tenant))
        await asyncio.wait({task}, timeout=self._within)
        if task.done():
            return await self._inline(task.result(), thread)
        # Twilio gives up on slow webhooks: answer now, text the reply when it is ready.
        self._spawn(self._deliver_late(thread, task))
        return None

    async def delivery_status(
        self,
        message_sid: str,
        status: str,
        error_code: str | None = None,
        message_id: int | None = None,
    ) -> bool:
        """Apply a status callback; False when the message is not ours."""
        try:
            return await self._delivery_status(message_sid, status, error_code, message_id)
        except (SQLAlchemyError, OSError) as exc:
            raise SmsUnavailable(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc

    async def _delivery_status(
        self, message_sid: str, status: str, error_code: str | None, message_id: int | None
    ) -> bool:
        if message_id is not None:
            await self._repo.attach_sid(message_id, message_sid)
        return await self._repo.update_status(message_sid, status, error_code)

    async def _route(self, to_number: str) -> tuple[Tenant, str] | None:
        route, any_numbers = await self._tenants.lookup(to_number)
        if route is not None:
            return route.tenant, route.agent
        if any_numbers:
            return None
        # No number set up yet (the embedded install): everything is the default tenant's.
        tenant = await self._tenants.get(self._default_tenant)
        return tenant, tenant.agent

    async def _to_live_call(self, tenant: Tenant, sms: InboundSms) -> bool:
        if self.live_call is None or not sms.body.strip():
            return False
        try:
            taken = await self.live_call(tenant.slug, sms.from_number, sms.to_number, sms.body)
        except Exception as exc:
            # The text is still answered, by SMS: better than silence.
            log.warning("sms %s: live call not reached: %s", sms.message_sid, exc)
            return False
        return taken is not None

    async def _suspended_since(self, tenant: str) -> datetime | None:
        if self._billing is None:
            return None
        try:
            return await self._billing.suspended_since(tenant)
        except Exception as exc:
            log.warning("billing state of %s unknown (%s); answered as usual", tenant, exc)
            return None

    async def _fixed_reply(
        self, thread: SmsThread, tenant: Tenant, text: str
    ) -> InlineReply | None:
        if await self._rate_limited(thread):
            return None
        message = await self.sender.prepare(thread, text, tenant.sms_max_segments)
        return await self._inline(message, thread)

    async def _inline(self, message: SmsMessage | None, thread: SmsThread) -> InlineReply | None:
        if message is None:
            return None
        await self._repo.meter_outbound(message)  # Twilio sends what the TwiML holds
        if self.on_text is not None:
            self.on_text("sms.sent", thread, message)
        return InlineReply(message.body, self.sender.status_callback(message.id))

    async def _rate_limited(self, thread: SmsThread) -> bool:
        sent = await self._repo.outbound_in_last(thread.id, _RATE_WINDOW)
        if sent >= self._per_minute:
            log.warning(
                "sms from %s (%s): %d replies in the last minute, limit %d; stored, not answered",
                thread.number,
                thread.tenant,
                sent,
                self._per_minute,
            )
            return True
        return False

    # --- the agent -------------------------------------------------------------------------

    def agent_for(self, slug: str, tenant: str | None = None) -> AgentDefinition:
        """The tenant's published agent `slug` (#13), else the template."""
        found = tenant_agent(self._agents, tenant, slug) if tenant else self._agents.get(slug)
        return found or self._agents[self._default_agent]

    async def _agent_reply(self, thread: SmsThread, tenant: Tenant) -> SmsMessage | None:
        # One reply at a time per thread, so a burst of texts is answered in order and the
        # rate limit counts every reply.
        async with self._locks.hold(thread.id):
            if await self._rate_limited(thread):
                return None
            agent = self.agent_for(thread.agent, thread.tenant)
            history = await self._history(thread)
            if not history or history[-1].role != "user":
                return None  # an earlier reply already answered everything
            text_agent = TextAgent(
                agent,
                self._pipeline.dialogue,
                replay=self._pipeline.name == "offline",
                context=self._context(thread, tenant),
            )
            tools = ThreadTools(thread, tenant, self._repo, self._scheduled, self._clock())
            reply = await text_agent.reply(history, tools)
            await self._meter_tokens(tenant.slug, reply)
            if reply.tools:
                log.info("sms thread %d: tools %s", thread.id, ", ".join(reply.tools))
            return await self.sender.prepare(thread, reply.text, tenant.sms_max_segments)

    async def _meter_tokens(self, tenant: str, reply: TextReply) -> None:
        """The text reply's LLM tokens as usage rows (#14); a failure to store them is
        logged, never in the way of the reply."""
        if self._billing is None or not reply.usage:
            return
        now = datetime.now(UTC)  # as every usage row: the real time it was measured
        batch = secrets.token_hex(6)
        records = [
            UsageRecord(f"sms-llm:{batch}:{i}:{meter}", tenant, None, meter, n, usage.model, now)
            for i, usage in enumerate(reply.usage)
            for meter, n in (
                ("llm_input_tokens", usage.input_tokens),
                ("llm_output_tokens", usage.output_tokens),
            )
            if n
        ]
        try:
            await self._billing.usage.add(*records)
        except Exception:
            log.exception("sms: LLM usage of a reply for %s not stored", tenant)

    async def _history(self, thread: SmsThread) -> list[ThreadTurn]:
        turns: list[ThreadTurn] = []
        opted_out = False  # replayed the way receive() decided, to tell "YES" from an opt-in
        for message in await self._repo.messages(thread.id, HISTORY_LIMIT):
            if message.direction == "inbound":
                keyword = classify(message.body)
                if keyword is not None and (keyword.kind != "opt_in" or opted_out):
                    # Compliance keywords are not part of the conversation.
                    opted_out = keyword.kind == "opt_out" or (opted_out and keyword.kind == "help")
                    continue
                text = message.body.strip()
                if message.media_urls:
                    count = len(message.media_urls)
                    text = f"{text} [sent {count} attachment{'s' if count > 1 else ''}]".strip()
                turns.append(ThreadTurn("user", text))
            elif message.status not in ("failed", "canceled"):
                turns.append(ThreadTurn("assistant", message.body))
        return turns

    def _context(self, thread: SmsThread, tenant: Tenant) -> str:
        zone = local_zone(tenant, thread.number)
        local = self._clock().astimezone(ZoneInfo(zone))
        start, end = tenant.calling_start_min, tenant.calling_end_min
        return (
            f"You are texting with {thread.number}. Their local time is now "
            f"{local:%A %Y-%m-%d %H:%M} ({zone}). Calls can be placed between "
            f"{start // 60:02d}:{start % 60:02d} and {end // 60:02d}:{end % 60:02d} their time."
        )

    async def _deliver_late(self, thread: SmsThread, task: asyncio.Task[SmsMessage | None]) -> None:
        message = await task
        if message is not None:
            await self.sender.deliver(thread, message)

    # --- after a call ----------------------------------------------------------------------

    def follow_up(self, call: CallInfo) -> None:
        """Text the agent's follow-up to the other party of a finished call (in the
        background: this is called from the call's teardown)."""
        if self._closing:
            return
        agent = tenant_agent(self._agents, call.tenant, call.agent)
        if agent is None or not agent.followup_sms:
            return
        self._spawn(self._send_follow_up(call, agent))

    async def _send_follow_up(self, call: CallInfo, agent: AgentDefinition) -> None:
        if call.direction == "inbound":
            number, business = call.from_number, call.to_number
        else:
            number, business = call.to_number, call.from_number
        if not number.startswith("+"):
            return  # a client or SIP address, not a phone that can be texted
        try:
            tenant = await self._tenants.get(call.tenant)
        except UnknownTenant:
            log.warning("call %s: unknown tenant %s; no follow-up SMS", call.call_sid, call.tenant)
            return
        thread = await self._repo.open_thread(tenant.slug, number, business, agent.slug)
        text = agent.render_speech(agent.followup_sms, {**agent.links, **call.variables})
        message = await self.sender.prepare(thread, text, tenant.sms_max_segments)
        if message is not None:
            await self.sender.deliver(thread, message)

    # --- lifecycle -------------------------------------------------------------------------

    async def aclose(self, timeout_s: float = 15.0) -> None:
        """Finish the replies still being written or sent (the webhook already answered),
        then stop."""
        self._closing = True
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            task.cancel()
        if late:
            log.error("%d SMS replies were still unfinished at shutdown", len(late))
            await asyncio.gather(*late, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T | None]:
        task = asyncio.create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, _T]) -> _T | None:
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sms: background work failed")
            return None
