"""Post-call analyses: which ended calls still need one, claiming a call so one worker
analyses it, and storing the result on the call (and the lead's status with it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import and_, or_, select, update

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import StoredCall
from voice_agent.storage.tables import calls, leads

Outcome = Literal[
    "qualified", "not-interested", "callback", "voicemail", "transferred", "no-answer", "other"
]
#: The contract's outcomes (spec/interface.md, "Post-call record"), in its order.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: A lead's status after a call with this outcome; "other" leaves it as the dialer set it.
LEAD_STATUS_BY_OUTCOME: dict[str, str] = {
    "qualified": "qualified",
    "not-interested": "not-interested",
    "callback": "callback",
    "voicemail": "voicemail",
    "transferred": "transferred",
    "no-answer": "no-answer",
}
#: Lead statuses an analysis never overrides: the person said stop.
_FINAL_LEAD_STATUSES = ("opted-out",)


@dataclass(slots=True)
class CallToAnalyse:
    """A finished call with everything the analysis reads."""

    call: StoredCall
    answered_by: str | None
    #: calls.outcome before the analysis: what telephony recorded ("voicemail", "machine",
    #: a Twilio status like "no-answer"), if anything.
    outcome: str | None
    lead_id: int | None
    #: "first last" of the call's lead, when it has one.
    lead_name: str


@dataclass(slots=True)
class StoredAnalysis:
    tenant: str
    direction: str
    #: The other party's number: the caller's (inbound) or the callee's (outbound).
    number: str
    lead_id: int | None
    #: The lead's new status, when the analysis moved it.
    lead_status: str | None


class AnalysisRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._calls = CallRepository(db)

    async def pending(self, since: datetime, limit: int = 100) -> list[str]:
        """Ended calls since ``since`` without an analysis, oldest first."""
        query = (
            select(calls.c.call_sid)
            .where(
                calls.c.analyzed_at.is_(None),
                calls.c.ended_at.is_not(None),
                calls.c.ended_at >= since,
                calls.c.tenant != "",
            )
            .order_by(calls.c.ended_at)
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            return [row.call_sid for row in await conn.execute(query)]

    async def claim(self, call_sid: str, now: datetime, lease: timedelta) -> bool:
        """Take the call for this worker; False when it is analysed or another worker
        holds a claim younger than ``lease``."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(calls)
                .where(
                    calls.c.call_sid == call_sid,
                    calls.c.analyzed_at.is_(None),
                    or_(
                        calls.c.analysis_claimed_at.is_(None),
                        calls.c.analysis_claimed_at < now - lease,
                    ),
                )
                .values(analysis_claimed_at=now)
            )
        return result.rowcount > 0

    async def load(self, call_sid: str) -> CallToAnalyse | None:
        call = await self._calls.get_call(call_sid)
        if call is None:
            return None
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        calls.c.answered_by,
                        calls.c.outcome,
                        calls.c.lead_id,
                        leads.c.first_name,
                        leads.c.last_name,
                    )
                    .select_from(
                        calls.outerjoin(
                            leads,
                            and_(leads.c.id == calls.c.lead_id, leads.c.tenant == calls.c.tenant),
                        )
                    )
                    .where(calls.c.id == call.id)
                )
            ).one()
        name = " ".join(part for part in (row.first_name, row.last_name) if part)
        return CallToAnalyse(call, row.answered_by, row.outcome, row.lead_id, name)

    async def release(self, call_sid: str) -> None:
        """Give the claim back (the model was unavailable): the next round retries."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(calls)
                .where(calls.c.call_sid == call_sid, calls.c.analyzed_at.is_(None))
                .values(analysis_claimed_at=None)
            )

    async def store(
        self, call_sid: str, analysis: dict[str, Any], now: datetime
    ) -> StoredAnalysis | None:
        """Write the analysis on the call and move its lead's status with the outcome, in
        one transaction. None when the call is gone."""
        outcome = str(analysis["outcome"])
        async with self._db.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(calls)
                    .where(calls.c.call_sid == call_sid)
                    .values(
                        analysis=analysis,
                        outcome=outcome,
                        summary=str(analysis.get("summary") or ""),
                        analyzed_at=now,
                    )
                    .returning(
                        calls.c.tenant,
                        calls.c.direction,
                        calls.c.from_number,
                        calls.c.to_number,
                        calls.c.lead_id,
                    )
                )
            ).first()
            if row is None:
                return None
            number = row.to_number if row.direction == "outbound" else row.from_number
            stored = StoredAnalysis(row.tenant, row.direction, number, row.lead_id, None)
            status = LEAD_STATUS_BY_OUTCOME.get(outcome)
            if row.lead_id is None or status is None:
                return stored
            moved = await conn.execute(
                update(leads)
                .where(leads.c.id == row.lead_id, leads.c.status.not_in(_FINAL_LEAD_STATUSES))
                .values(status=status, updated_at=now)
            )
            if moved.rowcount > 0:
                stored.lead_status = status
        return stored
