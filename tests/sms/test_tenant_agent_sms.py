"""SMS runs the tenant's published agent (#13): its own business name reaches the model,
and a publish changes the next reply's prompt."""

from __future__ import annotations

from tests.sms.conftest import BUSINESS, CUSTOMER, SmsServer, reply_of
from voice_agent.storage.tenants import Tenant


async def test_sms_uses_the_tenants_published_agent(sms_server: SmsServer) -> None:
    runtime = sms_server.runtime
    tenant = Tenant(
        slug="acme", name="Acme Plumbing", agent="receptionist", outbound_agent="lead_qualifier"
    )
    await runtime.tenants.create(tenant)
    await runtime.tenants.add_number("acme", BUSINESS)
    studio = runtime.agent_studio
    assert studio is not None
    await studio.create_for_new_tenant(tenant, "test")

    assert reply_of(await sms_server.text("Hi, I need a new roof")) is not None
    system = sms_server.chats()[-1]["messages"][0]["content"]
    assert "Acme Plumbing" in system and "Acme Home Services" not in system

    agent = await studio.repo.get("acme", "receptionist")
    draft = (await studio.repo.draft(agent)).data
    draft["variables"]["hours"] = "every day from 7 AM to 11 PM"
    await studio.save_draft(agent, draft, "staff@acme")
    assert (await studio.publish(tenant, agent, "staff@acme", admin=False)).version == 2
    assert reply_of(await sms_server.text("When are you open?")) is not None
    system = sms_server.chats()[-1]["messages"][0]["content"]
    assert "every day from 7 AM to 11 PM" in system
    thread = await sms_server.thread(CUSTOMER, "acme")
    assert thread.agent == "receptionist"
