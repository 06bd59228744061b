"""Rows and files for dashboard tests, written through the repositories (and, for the
columns another feature's repository will own, the tables), plus a real stereo WAV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile
from sqlalchemy import insert, update

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import CallEnded, CallStarted, TurnRecord
from voice_agent.storage.tables import calls, leads, opt_outs, sms_messages, sms_threads
from voice_agent.storage.tenants import Tenant, TenantRepository
from voice_agent.storage.users import UserRepository

PASSWORD = "correct horse battery staple"
SAMPLE_RATE = 8000


@dataclass(frozen=True, slots=True)
class SeedTurn:
    role: str
    text: str
    at_s: float  # offset from the call's start
    length_s: float
    interrupted: bool = False
    total_ms: float | None = None


async def add_tenant(db: Database, slug: str, **fields: object) -> Tenant:
    tenant = Tenant(
        slug=slug, name=slug.title(), agent="receptionist", outbound_agent="lead_qualifier"
    )
    for name, value in fields.items():
        setattr(tenant, name, value)
    return await TenantRepository(db).save(tenant)


async def add_user(db: Database, email: str, role: str, tenant: str | None = None) -> None:
    await UserRepository(db).add(email, PASSWORD, role, tenant)


async def add_call(
    db: Database,
    call_sid: str,
    tenant: str,
    turns: list[SeedTurn],
    *,
    started_at: datetime | None = None,
    direction: str = "inbound",
    from_number: str = "+15551230000",
    to_number: str = "+15557654321",
    agent: str = "receptionist",
    ended: bool = True,
    **extra: object,
) -> datetime:
    """A stored call; ``extra`` sets the columns filled after the start (recording_path,
    outcome, lead_id, summary, duration_s)."""
    start = started_at or datetime.now(UTC) - timedelta(minutes=5)
    records: list[object] = [
        CallStarted(call_sid, tenant, direction, from_number, to_number, agent, "cascade", start)
    ]
    for seq, t in enumerate(turns, start=1):
        latency = {}
        if t.total_ms is not None:
            latency = {
                "endpointing_ms": t.total_ms * 0.4,
                "stt_ms": t.total_ms * 0.2,
                "llm_first_token_ms": t.total_ms * 0.1,
                "llm_ms": t.total_ms * 0.2,
                "tts_first_byte_ms": t.total_ms * 0.15,
                "total_ms": t.total_ms,
                "server_ms": t.total_ms * 0.05,
            }
        records.append(
            TurnRecord(
                call_sid,
                seq,
                t.role,
                t.text,
                start + timedelta(seconds=t.at_s),
                start + timedelta(seconds=t.at_s + t.length_s),
                t.interrupted,
                **latency,
            )
        )
    if ended:
        last = max((t.at_s + t.length_s for t in turns), default=1.0)
        records.append(
            CallEnded(call_sid, start + timedelta(seconds=last + 0.5), "completed", "caller-hangup")
        )
    await CallRepository(db).write(records)  # type: ignore[arg-type]
    if extra:
        async with db.engine.begin() as conn:
            await conn.execute(update(calls).where(calls.c.call_sid == call_sid).values(**extra))
    return start


async def add_lead(db: Database, tenant: str, phone: str, first_name: str, **fields: object) -> int:
    now = datetime.now(UTC)
    values = {
        "tenant": tenant,
        "first_name": first_name,
        "phone": phone,
        "created_at": now,
        "updated_at": now,
    } | fields
    async with db.engine.begin() as conn:
        result = await conn.execute(insert(leads).values(values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def add_opt_out(db: Database, tenant: str, number: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(opt_outs).values(
                tenant=tenant,
                number=number,
                opted_out=True,
                keyword="STOP",
                updated_at=datetime.now(UTC),
            )
        )


async def add_thread(db: Database, tenant: str, number: str, bodies: list[tuple[str, str]]) -> int:
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        result = await conn.execute(
            insert(sms_threads).values(
                tenant=tenant,
                number=number,
                business_number="+15557654321",
                agent="receptionist",
                created_at=now,
                last_message_at=now,
            )
        )
        thread_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        for i, (direction, body) in enumerate(bodies):
            at = now + timedelta(seconds=i)
            await conn.execute(
                insert(sms_messages).values(
                    thread_id=thread_id,
                    direction=direction,
                    body=body,
                    status="received" if direction == "inbound" else "delivered",
                    created_at=at,
                    updated_at=at,
                )
            )
    return thread_id


def stereo_wav(path: Path, seconds: float) -> Path:
    """A real 2-channel recording: caller on the left, agent on the right, a different tone
    each second so a player's position is audible."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    left = 0.3 * np.sin(2 * np.pi * (300 + 100 * np.floor(t)) * t)
    right = 0.3 * np.sin(2 * np.pi * 500 * t)
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="PCM_16")
    return path
