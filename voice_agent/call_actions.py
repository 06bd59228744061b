"""What a live call can be told to do from another worker (see call_control): each handler
runs on the worker holding the call's stream, answers at once, and leaves what takes long
(a goodbye being heard, a voicemail playing) to a task there."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from voice_agent.call_control import Ack, CallControl
from voice_agent.conversation.phrases import PhraseCache

log = logging.getLogger(__name__)

_SYNTH_S = 5.0
#: Twilio's final call statuses: the call is over whatever the stream says.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def register_actions(control: CallControl, phrases: PhraseCache) -> None:
    async def hangup(tap: Any, args: dict[str, Any]) -> Ack:
        # The agent's goodbye in its own voice, then the line closes (an admin's "end this
        # call", the dashboard's hang-up).
        control.spawn(tap.say_goodbye(str(args.get("reason") or "ended-by-staff")))
        return {"ok": True}

    async def transfer(tap: Any, args: dict[str, Any]) -> Ack:
        number = str(args.get("number") or "")
        if not number:
            return {"ok": False, "error": "number is required"}
        control.spawn(tap.transfer(number))
        return {"ok": True}

    async def voicemail(tap: Any, args: dict[str, Any]) -> Ack:
        # Synthesised here, in the agent's voice, then played on this worker's stream.
        async with asyncio.timeout(_SYNTH_S):
            audio = await phrases.get(str(args["text"]), str(args["voice"]))
        control.spawn(tap.leave_message(audio))
        return {"ok": True, "audio_bytes": len(audio)}

    async def status(tap: Any, args: dict[str, Any]) -> Ack:
        if args.get("status") in FINAL_STATUSES:
            # Twilio says the call is over: close the stream rather than wait on it.
            control.spawn(tap.hangup())
            return {"ok": True, "ended": True}
        return {"ok": True, "ended": False}

    async def text(tap: Any, args: dict[str, Any]) -> Ack:
        # An SMS naming the call (voice_agent.live_texts): the agent answers it by voice.
        body = str(args.get("text") or "").strip()
        if not body:
            return {"ok": False, "error": "text is required"}
        if not tap.on_text(body):
            return {"ok": False, "error": "the call takes no text now"}
        return {"ok": True}

    async def holding(tap: Any, args: dict[str, Any]) -> Ack:
        # Answered only by the worker whose session has the call's stream: a resumed
        # stream elsewhere is then a replay, as Twilio resumes only a stream that ended.
        return {"ok": True}

    control.register("holding", holding)
    control.register("hangup", hangup)
    control.register("sms", text)
    control.register("transfer", transfer)
    control.register("voicemail", voicemail)
    control.register("status", status)
