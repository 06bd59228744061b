"""One call as the dashboard shows it: the stored transcript plus the columns filled in
after the start (outcome, summary, recording, lead), and the calls still in progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import StoredCall
from voice_agent.storage.tables import calls

# A call "in progress" for longer than this lost its end (a crashed worker): not live.
LIVE_WINDOW = timedelta(hours=4)


@dataclass(slots=True, frozen=True)
class CallView:
    call: StoredCall
    lead_id: int | None
    outcome: str | None
    summary: str | None
    recording_path: str | None
    answered_by: str | None
    duration_s: float | None
    price: float | None
    price_unit: str | None
    #: A browser test of an agent (the portal's "talk to this agent"): no telephony.
    is_test: bool = False

    @property
    def fields(self) -> dict[str, Any]:
        """The fields the post-call analysis extracted; before it ran, any the pipeline
        stored in the call's metadata."""
        extracted = (self.call.analysis or {}).get("fields")
        if not isinstance(extracted, dict):
            extracted = (self.call.metadata or {}).get("fields")
        return dict(extracted) if isinstance(extracted, dict) else {}

    @property
    def analysis_note(self) -> str:
        """How the analysis was made, for staff: its source, and why it fell back."""
        analysis = self.call.analysis or {}
        if not analysis:
            return ""
        note = {"llm": "by the model", "playbook": "from the playbook"}.get(
            analysis.get("source", ""), "from the call's facts"
        )
        request = analysis.get("request") or {}
        if request:
            note += (
                f" ({request.get('attempts')} request(s), {request.get('ms', 0):.0f} ms,"
                f" {request.get('input_tokens', 0)} + {request.get('output_tokens', 0)} tokens)"
            )
        if analysis.get("reason"):
            note += f"; {analysis['reason']}"
        return note


class CallViews:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._calls = CallRepository(db)

    async def get(self, call_sid: str, tenant: str | None) -> CallView | None:
        """The call, or None when it does not exist or belongs to another tenant."""
        call = await self._calls.get_call(call_sid, tenant)
        if call is None or call.tenant == "":
            return None
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        calls.c.lead_id,
                        calls.c.outcome,
                        calls.c.summary,
                        calls.c.recording_path,
                        calls.c.answered_by,
                        calls.c.duration_s,
                        calls.c.price,
                        calls.c.price_unit,
                        calls.c.is_test,
                    ).where(calls.c.id == call.id)
                )
            ).one()
        duration = row.duration_s if row.duration_s is not None else call.duration_s
        return CallView(
            call=call,
            lead_id=row.lead_id,
            outcome=row.outcome,
            summary=row.summary,
            recording_path=row.recording_path,
            answered_by=row.answered_by,
            duration_s=duration,
            price=row.price,
            price_unit=row.price_unit,
            is_test=bool(row.is_test),
        )

    async def in_progress(self, tenant: str | None, now: datetime | None = None) -> list[str]:
        """Call SIDs still in progress, newest first."""
        since = (now or datetime.now(UTC)) - LIVE_WINDOW
        query = (
            select(calls.c.call_sid)
            .where(
                and_(
                    calls.c.status == "in-progress",
                    calls.c.started_at >= since,
                    calls.c.tenant != "",
                )
            )
            .order_by(calls.c.started_at.desc())
            .limit(50)
        )
        if tenant is not None:
            query = query.where(calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            return [row.call_sid for row in await conn.execute(query)]
