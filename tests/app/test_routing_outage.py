"""PostgreSQL going away while calls come in: a number the server has routed before goes to
its own tenant still, and one it never routed is refused with a 503 (Twilio's fallback URL
takes it) rather than answered by another tenant's agent."""

from __future__ import annotations

from collections.abc import Callable

from tests.app.twilio_side import new_call_sid, post_voice, stream_from_twiml, voice_params
from tests.tcp_proxy import TcpProxy
from voice_agent.demo import running_server
from voice_agent.settings import Settings
from voice_agent.storage.tenants import Tenant

ACME = "+13125550111"
BOLT = "+13125550122"


async def test_calls_keep_their_tenant_while_the_database_is_down(
    cascade_settings: Callable[..., Settings], pg_proxy: TcpProxy, pg_database: str
) -> None:
    settings = cascade_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{pg_database}"
    )
    async with running_server(settings) as runtime:
        await runtime.tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
        await runtime.tenants.save(Tenant("bolt", "Bolt", "receptionist", "lead_qualifier"))
        await runtime.tenants.add_number("acme", ACME, agent="lead_qualifier")
        await runtime.tenants.add_number("bolt", BOLT)
        before = await post_voice(settings, voice_params(new_call_sid(), To=ACME))
        assert before.status_code == 200, before.text

        await pg_proxy.cut()
        call_sid = new_call_sid()
        during = await post_voice(settings, voice_params(call_sid, To=ACME))
        assert during.status_code == 200, during.text
        token = stream_from_twiml(during.text)[1]["token"]
        call = await runtime.tokens.redeem(token)
        assert call is not None
        assert (call["tenant"], call["agent"]) == ("acme", "lead_qualifier")
        stale = runtime.metrics.registry.get_sample_value("voice_agent_stale_routes_total")
        assert stale == 1.0

        never_routed = await post_voice(settings, voice_params(new_call_sid(), To=BOLT))
        assert never_routed.status_code == 503

        await pg_proxy.restore()
        after = await post_voice(settings, voice_params(new_call_sid(), To=BOLT))
        assert after.status_code == 200, after.text
