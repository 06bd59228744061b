"""Tenants' own agents (#13) on SQLite and PostgreSQL: drafts, versions (who, when),
approvals decided once, the audit log, and migration 0006a copying each tenant's template."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from prompts import load_agents, template_data
from voice_agent.agents.book import AgentBook
from voice_agent.agents.studio import tenant_copy
from voice_agent.storage.agents import AgentRepository, UnknownAgent
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.tenants import Tenant, TenantRepository


async def _tenant(db: Database, slug: str, name: str) -> None:
    await TenantRepository(db).save(
        Tenant(slug=slug, name=name, agent="receptionist", outbound_agent="lead_qualifier")
    )


async def test_versions_drafts_and_book(db: Database) -> None:
    await _tenant(db, "acme", "Acme Plumbing")
    await _tenant(db, "globex", "Globex Roofing")
    repo = AgentRepository(db)
    acme = await repo.create(
        "acme", "receptionist", tenant_copy("receptionist", "Acme Plumbing"), "a@x"
    )
    globex = await repo.create(
        "globex", "receptionist", tenant_copy("receptionist", "Globex Roofing"), "g@x"
    )
    assert (acme.current_version, globex.current_version) == (1, 1)
    # Creating again returns the existing agent, never a second one.
    assert (await repo.create("acme", "receptionist", {}, "a@x")).id == acme.id

    draft = (await repo.draft(acme)).data
    draft["greeting"] = "Hello from Acme, {agent_name} here."
    await repo.save_draft(acme, draft, "staff@acme")
    assert (await repo.draft(acme)).updated_by == "staff@acme"
    assert await repo.publish(acme, draft, "staff@acme") == 2
    versions = await repo.versions(acme)
    assert [(v.version, v.published_by) for v in versions] == [(2, "staff@acme"), (1, "a@x")]
    assert versions[0].published_at >= versions[1].published_at

    book = AgentBook(load_agents())
    await book.load(repo)
    assert book.resolve("acme", "receptionist")[1] == 2
    assert book.lookup("acme", "receptionist").greeting.startswith("Hello from Acme")
    assert book.lookup("globex", "receptionist").variables["business_name"] == "Globex Roofing"
    # A tenant without its own agent runs the template; an unknown tenant too.
    assert book.resolve("acme", "lead_qualifier") == (book["lead_qualifier"], None)
    assert book.lookup("nobody", "receptionist") is book["receptionist"]

    # Rollback = version 1's fields published again as version 3.
    old = await repo.version(acme, 1)
    assert await repo.publish(acme, old.data, "staff@acme", note="rollback to v1") == 3
    await book.refresh(repo, "acme", "receptionist")
    assert book.resolve("acme", "receptionist")[1] == 3
    assert "Thanks for calling Acme Plumbing" in book.lookup("acme", "receptionist").render_speech(
        book.lookup("acme", "receptionist").greeting
    )
    with pytest.raises(UnknownAgent):
        await repo.version(acme, 9)
    with pytest.raises(UnknownAgent):
        await repo.get("globex", "lead_qualifier")


async def test_approval_is_decided_once_and_audit_kept(db: Database) -> None:
    await _tenant(db, "acme", "Acme")
    repo = AgentRepository(db)
    agent = await repo.create("acme", "receptionist", tenant_copy("receptionist"), "s@x")
    data = (await repo.draft(agent)).data | {"goodbye": "Bye now."}
    approval_id = await repo.request_approval(agent, data, "s@x")
    pending = await repo.approvals()
    assert [(a.id, a.tenant, a.slug, a.requested_by) for a in pending] == [
        (approval_id, "acme", "receptionist", "s@x")
    ]
    approval = await repo.approval(approval_id)
    assert await repo.decide(approval, True, "admin@x", agent) == 2
    assert await repo.decide(approval, True, "admin@x", agent) is None  # already decided
    assert await repo.approvals() == []
    done = await repo.approval(approval_id)
    assert (done.status, done.decided_by, done.version) == ("approved", "admin@x", 2)
    published = (await repo.published("acme"))[0]
    assert (published.version, published.published_by, published.approved_by) == (
        2,
        "s@x",
        "admin@x",
    )
    assert published.data["goodbye"] == "Bye now."

    await repo.audit("acme", "s@x", "settings", {"calling_days": "12345"}, {"calling_days": "1"})
    await repo.audit("other", "o@x", "settings", None, {"x": 1})
    log = await repo.audit_log("acme")
    assert [(e.actor, e.action, e.before, e.after) for e in log] == [
        ("s@x", "settings", {"calling_days": "12345"}, {"calling_days": "1"})
    ]


async def test_migration_copies_each_tenants_templates(empty_database_url: str) -> None:
    url = empty_database_url
    await upgrade(url, "0004")
    db = await Database.connect(url)
    try:
        async with db.engine.begin() as conn:
            for slug, agent in (("acme", "receptionist"), ("globex", "lead_qualifier")):
                await conn.execute(
                    text(
                        "INSERT INTO tenants (slug, name, agent, outbound_agent, created_at)"
                        " VALUES (:s, :n, :a, 'lead_qualifier', CURRENT_TIMESTAMP)"
                    ),
                    {"s": slug, "n": slug.title(), "a": agent},
                )
            await conn.execute(
                text(
                    "INSERT INTO tenant_numbers (number, tenant, agent)"
                    " VALUES ('+14155550100', 'globex', 'receptionist')"
                )
            )
        await upgrade(url)
        repo = AgentRepository(db)
        published = {(v.tenant, v.slug): v for v in await repo.published()}
        assert set(published) == {
            ("acme", "receptionist"),
            ("acme", "lead_qualifier"),
            ("globex", "lead_qualifier"),
            ("globex", "receptionist"),
        }
        for (tenant, slug), version in published.items():
            # Nothing lost: every field of the template, verbatim, as version 1 and draft.
            assert version.data == template_data(slug)
            assert version.version == 1
            agent = await repo.get(tenant, slug)
            assert (await repo.draft(agent)).data == template_data(slug)
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("SELECT require_approval FROM tenants LIMIT 1"))).one()
            assert not row[0]
    finally:
        await db.dispose()
