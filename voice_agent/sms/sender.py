"""Every text we send goes through here: opt-out check, segment cap, stored, then sent.

Two ways out: as the TwiML <Message> answering the webhook (Twilio sends it; its
status callback tells us the MessageSid), or through Messages.create when the webhook has
already been answered. Both carry a status callback naming our stored message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voice_agent.sms.segments import count_segments, fit_segments
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.sms import SmsMessage, SmsRepository, SmsThread
from voice_agent.telephony.rest import TwilioRest, TwilioRestError

log = logging.getLogger(__name__)

#: (event type, thread, message): what the events package is told of a text.
TextHook = Callable[[str, SmsThread, SmsMessage], None]

STATUS_PATH = "/twilio/sms/status"


class SmsSender:
    def __init__(
        self,
        repo: SmsRepository,
        opt_outs: OptOutRepository,
        rest: TwilioRest | None,
        public_base_url: str,
        from_number: str | None,
    ) -> None:
        self._repo = repo
        self._opt_outs = opt_outs
        self._rest = rest
        self._base = public_base_url
        self._from = from_number
        #: Told of each text Twilio accepted ("sms.sent"), for the events package.
        self.on_text: TextHook | None = None

    def status_callback(self, message_id: int) -> str:
        return f"{self._base}{STATUS_PATH}?m={message_id}"

    async def may_text(self, thread: SmsThread) -> bool:
        if await self._opt_outs.is_opted_out(thread.tenant, thread.number):
            log.info("sms to %s (%s) not sent: opted out", thread.number, thread.tenant)
            return False
        return True

    async def prepare(self, thread: SmsThread, text: str, max_segments: int) -> SmsMessage | None:
        """Store an outbound reply, cut to `max_segments`; None when the number may not be
        texted (opted out) or there is nothing to say."""
        body = fit_segments(text, max(1, max_segments)) if text.strip() else ""
        if not body or not await self.may_text(thread):
            return None
        return await self._repo.add_message(
            thread.id,
            direction="outbound",
            body=body,
            status="queued",
            segments=count_segments(body).segments,
        )

    async def deliver(self, thread: SmsThread, message: SmsMessage) -> bool:
        """Send a prepared message through the REST API; True when Twilio accepted it."""
        if not await self.may_text(thread):
            # Opted out while the reply was being written: it is never sent.
            await self._repo.sent(message.id, status="canceled")
            return False
        sender = thread.business_number or self._from
        if self._rest is None or not sender:
            log.error(
                "sms to %s not sent: no Twilio REST credentials or sender number"
                " (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER)",
                thread.number,
            )
            await self._repo.sent(message.id, status="failed")
            return False
        try:
            sid, status = await self._rest.send_sms(
                thread.number, sender, message.body, self.status_callback(message.id)
            )
        except TwilioRestError as exc:
            log.warning("sms to %s failed: %s", thread.number, exc)
            code = str(exc.code) if exc.code is not None else None
            await self._repo.sent(message.id, status="failed", error_code=code)
            return False
        await self._repo.sent(message.id, status=status, message_sid=sid)
        if self.on_text is not None:
            message.status, message.message_sid = status, sid
            self.on_text("sms.sent", thread, message)
        return True
