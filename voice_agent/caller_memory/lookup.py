"""The one place that decides what we know about a phone number. It reads our own tables
(leads, earlier calls and their analyses, SMS threads); a CRM's people table can replace
it by providing a function of the same shape (see `Finder`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import desc, or_, select

from voice_agent.storage.database import Database
from voice_agent.storage.tables import calls, leads, sms_messages, sms_threads

_LAST_CHARS = 240


@dataclass(frozen=True, slots=True)
class KnownCaller:
    name: str
    #: One line about our latest contact with them ("" when there was none).
    last_interaction: str = ""

    def variables(self) -> dict[str, str]:
        """The prompt variables a call with this person carries."""
        return {"caller_name": self.name, "last_interaction": self.last_interaction}


#: (tenant, phone number in E.164) -> what we know, or None for a stranger.
Finder = Callable[[str, str], Awaitable[KnownCaller | None]]


def _day(at: datetime) -> str:
    return f"{at:%b} {at.day}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LAST_CHARS else text[:_LAST_CHARS].rsplit(" ", 1)[0] + "…"


def database_finder(database: Database) -> Finder:
    """Our own tables: the newest lead's name (else the name an analysed call recorded),
    and the newer of the last analysed call and the last text they sent."""

    async def find(tenant: str, phone: str) -> KnownCaller | None:
        if not phone:
            return None
        async with database.engine.connect() as conn:
            lead = (
                await conn.execute(
                    select(leads.c.first_name, leads.c.last_name)
                    .where(leads.c.tenant == tenant, leads.c.phone == phone)
                    .order_by(desc(leads.c.created_at))
                    .limit(1)
                )
            ).first()
            call = (
                await conn.execute(
                    select(calls.c.ended_at, calls.c.analysis, calls.c.direction)
                    .where(
                        calls.c.tenant == tenant,
                        or_(
                            calls.c.from_number == phone,
                            (calls.c.to_number == phone) & (calls.c.direction == "outbound"),
                        ),
                        calls.c.analysis.is_not(None),
                    )
                    .order_by(desc(calls.c.ended_at))
                    .limit(1)
                )
            ).first()
            text = (
                await conn.execute(
                    select(sms_messages.c.body, sms_messages.c.created_at)
                    .select_from(sms_threads.join(sms_messages))
                    .where(
                        sms_threads.c.tenant == tenant,
                        sms_threads.c.number == phone,
                        # What they wrote: our own texts (a call's follow-up) say less
                        # than the call they followed.
                        sms_messages.c.direction == "inbound",
                    )
                    .order_by(desc(sms_messages.c.created_at))
                    .limit(1)
                )
            ).first()
        analysis = call.analysis if call is not None and isinstance(call.analysis, dict) else {}
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) if lead else ""
        if not name:
            found = (analysis.get("fields") or {}).get("name")
            name = found.strip() if isinstance(found, str) else ""
        if not name:
            return None  # a number we cannot greet by name is a stranger to the greeting
        last = ""
        call_at = call.ended_at if call is not None else None
        if text is not None and (call_at is None or text.created_at > call_at):
            last = f"On {_day(text.created_at)} they texted us: {_clip(text.body)}"
        elif call_at is not None and analysis.get("summary"):
            last = f"On {_day(call_at)}, a call: {_clip(str(analysis['summary']))}"
        return KnownCaller(name, last)

    return find
