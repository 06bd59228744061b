from __future__ import annotations

import pytest

from voice_agent.storage.database import Database
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.tenants import NumberTaken, Tenant, TenantRepository, UnknownTenant


def _tenant(slug: str, **fields: object) -> Tenant:
    values: dict[str, object] = {
        "slug": slug,
        "name": slug.title(),
        "agent": "receptionist",
        "outbound_agent": "lead_qualifier",
    }
    return Tenant(**(values | fields))  # type: ignore[arg-type]


async def test_save_get_and_update(db: Database) -> None:
    repo = TenantRepository(db)
    await repo.save(_tenant("acme", brand_color="#ff0000"))
    got = await repo.get("acme")
    assert (got.name, got.brand_color, got.retry_attempts) == ("Acme", "#ff0000", 2)
    got.retry_attempts = 5
    await repo.save(got)
    assert (await repo.get("acme")).retry_attempts == 5
    assert [t.slug for t in await repo.all()] == ["acme"]
    with pytest.raises(UnknownTenant):
        await repo.get("nobody")


async def test_ensure_keeps_an_existing_tenant(db: Database) -> None:
    repo = TenantRepository(db)
    await repo.save(_tenant("acme", name="Acme Plumbing"))
    kept = await repo.ensure(_tenant("acme", name="Something Else"))
    assert kept.name == "Acme Plumbing"
    made = await repo.ensure(_tenant("new"))
    assert made.slug == "new"


async def test_number_routes_to_one_tenant_with_its_agent(db: Database) -> None:
    repo = TenantRepository(db)
    await repo.save(_tenant("acme"))
    await repo.save(_tenant("globex"))
    await repo.add_number("acme", "+14155550100")
    await repo.add_number("globex", "+14155550111", agent="lead_qualifier")

    route = await repo.route("+14155550100")
    assert route is not None
    assert (route.tenant.slug, route.agent) == ("acme", "receptionist")
    other = await repo.route("+14155550111")
    assert other is not None and (other.tenant.slug, other.agent) == ("globex", "lead_qualifier")
    assert await repo.route("+14155550199") is None

    with pytest.raises(NumberTaken):
        await repo.add_number("globex", "+14155550100")
    with pytest.raises(UnknownTenant):
        await repo.add_number("nobody", "+14155550122")
    assert await repo.numbers("globex") == [("+14155550111", "lead_qualifier")]
    await repo.remove_number("+14155550111")
    assert await repo.route("+14155550111") is None


async def test_opt_out_is_per_tenant_and_reversible(db: Database) -> None:
    repo = OptOutRepository(db)
    number = "+14155550134"
    assert not await repo.is_opted_out("acme", number)
    await repo.record("acme", number, opted_out=True, keyword="STOP")
    assert await repo.is_opted_out("acme", number)
    assert not await repo.is_opted_out("globex", number)
    assert await repo.opted_out_numbers("acme") == {number}
    await repo.record("acme", number, opted_out=False, keyword="START")
    assert not await repo.is_opted_out("acme", number)
    assert await repo.opted_out_numbers("acme") == set()
