"""Dashboard logins on both backends: argon2 hashes, roles, tenant checks, sign-in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.dashboard.seed import add_tenant
from voice_agent.storage.database import Database
from voice_agent.storage.tables import users
from voice_agent.storage.tenants import UnknownTenant
from voice_agent.storage.users import DuplicateEmail, UserError, UserRepository


async def test_add_and_authenticate(db: Database) -> None:
    await add_tenant(db, "acme")
    repo = UserRepository(db)
    staff = await repo.add("  Staff@Acme.TEST ", "s3cret pass", "staff", "acme")
    assert staff.email == "staff@acme.test" and staff.tenant == "acme" and not staff.is_admin
    async with db.engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret" not in stored

    signed_in = await repo.authenticate("STAFF@acme.test", "s3cret pass")
    assert signed_in is not None and signed_in.id == staff.id
    again = await repo.get(staff.id)
    assert again is not None and again.last_login_at is not None
    assert await repo.authenticate("staff@acme.test", "wrong") is None
    assert await repo.authenticate("nobody@acme.test", "s3cret pass") is None
    assert await repo.get(staff.id + 100) is None


async def test_refusals_name_the_field(db: Database) -> None:
    await add_tenant(db, "acme")
    repo = UserRepository(db)
    await repo.add("admin@example.com", "pw", "admin")
    cases = [
        (("admin@example.com", "pw", "admin", None), DuplicateEmail, "email"),
        (("ADMIN@example.com", "pw", "admin", None), DuplicateEmail, "email"),
        (("not-an-email", "pw", "admin", None), UserError, "email"),
        (("a@example.com", "pw", "owner", None), UserError, "role"),
        (("a@example.com", "pw", "staff", None), UserError, "tenant"),
        (("a@example.com", "pw", "admin", "acme"), UserError, "tenant"),
        (("a@example.com", "", "admin", None), UserError, "password"),
    ]
    for args, error, field in cases:
        with pytest.raises(error, match=f"^{field}:"):
            await repo.add(*args)
    with pytest.raises(UnknownTenant):
        await repo.add("a@example.com", "pw", "staff", "nope")
    assert [u.email for u in await repo.all()] == ["admin@example.com"]
