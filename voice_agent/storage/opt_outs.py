"""Who asked not to be contacted, per tenant. Every outbound SMS and call checks here."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from voice_agent.storage.database import Database
from voice_agent.storage.tables import opt_outs


class OptOutRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_opted_out(self, tenant: str, number: str) -> bool:
        query = select(opt_outs.c.opted_out).where(
            opt_outs.c.tenant == tenant, opt_outs.c.number == number
        )
        async with self._db.engine.connect() as conn:
            return bool((await conn.execute(query)).scalar())

    async def record(
        self, tenant: str, number: str, *, opted_out: bool, keyword: str, at: datetime | None = None
    ) -> None:
        """Store the latest keyword the number sent; an opt-in after an opt-out clears it."""
        values = {
            "tenant": tenant,
            "number": number,
            "opted_out": opted_out,
            "keyword": keyword,
            "updated_at": at or datetime.now(UTC),
        }
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(opt_outs).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[opt_outs.c.tenant, opt_outs.c.number],
            set_={"opted_out": opted_out, "keyword": keyword, "updated_at": values["updated_at"]},
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def opted_out_numbers(self, tenant: str) -> set[str]:
        query = select(opt_outs.c.number).where(
            opt_outs.c.tenant == tenant, opt_outs.c.opted_out.is_(True)
        )
        async with self._db.engine.connect() as conn:
            return {row.number for row in await conn.execute(query)}
