"""A text that names a live call reaches that call, whichever worker holds its stream.

A text names a call when it comes from the call's other party (the caller of an inbound
call, the callee of an outbound one) to the business number the call is on, while the
call is in progress: the caller spelling their email by SMS while talking to the agent.
The SMS webhook can land on any worker of any host; the call's session lives on one. The
text goes through the same live call control as a dashboard hang-up (Redis publish, the
holder's acknowledgement, a timeout; in-process without REDIS_URL), and the agent answers
it by voice in the call. When no worker holding such a call acknowledges in time, the text
is answered by SMS as any other.

Calls are found first among this worker's own streams (no query, and a call whose row the
write queue has not stored yet), then in the calls table, which every host shares.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from voice_agent.call_control import Ack, CallControl
from voice_agent.clock import utc_now
from voice_agent.storage.calls import CallRepository

log = logging.getLogger(__name__)

ACTION = "sms"
#: Bounds the whole search and hand-over: the SMS webhook must still answer in time.
DEFAULT_TIMEOUT_S = 2.0
#: A row older than this with no end is a call whose worker died without resuming it.
_LONGEST_CALL = timedelta(hours=6)


class LiveCallTexts:
    def __init__(
        self,
        calls: CallRepository,
        control: CallControl,
        live_calls: Mapping[str, Any],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._calls = calls
        self._control = control
        self._live = live_calls
        self._timeout_s = timeout_s
        self._clock = clock

    def _local(self, tenant: str, party: str, business: str) -> list[str]:
        found = []
        for sid, tap in tuple(self._live.items()):
            call = tap.call
            if call.tenant != tenant:
                continue
            if call.direction == "outbound":
                ours, theirs = call.from_number, call.to_number
            else:
                ours, theirs = call.to_number, call.from_number
            if theirs == party and ours == business:
                found.append(sid)
        return found

    async def deliver(self, tenant: str, party: str, business: str, text: str) -> Ack | None:
        """Hand ``text`` to the live call it names; the holder's acknowledgement, or None
        when no call took it (none in progress, or no holder answered in time)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                sids = self._local(tenant, party, business)
                if not sids:
                    since = self._clock() - _LONGEST_CALL
                    sids = await self._calls.in_progress_between(tenant, party, business, since)
                for sid in sids:
                    ack = await self._control.send(
                        sid, ACTION, timeout_s=self._timeout_s, text=text
                    )
                    if ack is not None and ack.get("ok"):
                        log.info("sms from %s handed to live call %s", party, sid)
                        return ack | {"call_sid": sid}
        except TimeoutError:
            log.info("sms from %s: no live call took it in %g s", party, self._timeout_s)
        return None
