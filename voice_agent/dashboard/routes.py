"""The dashboard's routes, mounted by the app. The browser tester's media websocket
(testers.TALK_PATH) is not here: it runs the telephony layer's Media Streams endpoint,
which the app composes (dashboard code imports storage and the bus, never telephony)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import voice_agent.dashboard.row_ids  # noqa: F401  (registers the "row_id" path parameter)
from voice_agent.dashboard import (
    admin,
    agent_pages,
    api,
    auth,
    billing_pages,
    event_pages,
    live_control,
    pages,
    people_pages,
    testers,
)
from voice_agent.dashboard.state import HERE

STATIC_PATH = "/dashboard-static"


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.index),
        Route("/login", auth.login_page, methods=["GET", "POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/calls", pages.calls_page),
        Route("/calls/{call_sid}", pages.call_page),
        Route("/calls/{call_sid}/recording", api.recording),
        Route("/calls/{call_sid}/transcript.json", api.transcript_json),
        Route("/calls/{call_sid}/transcript.txt", api.transcript_txt),
        Route("/live", pages.live_page),
        Route("/leads", pages.leads_page),
        Route("/people/{person_id:row_id}", people_pages.person_page),
        Route("/leads/{lead_id:row_id}/person", people_pages.lead_person),
        Route("/calls/{call_sid}/person", people_pages.call_person),
        Route("/sms", pages.sms_page),
        Route("/sms/{thread_id:row_id}", pages.sms_thread_page),
        Route("/tenants", admin.tenants_page),
        Route("/tenants", admin.tenant_create, methods=["POST"]),
        Route("/tenants/{slug}", admin.tenant_page),
        Route("/tenants/{slug}/numbers", admin.tenant_add_number, methods=["POST"]),
        Route("/tenants/{slug}/numbers/remove", admin.tenant_remove_number, methods=["POST"]),
        Route("/tenants/{slug}/branding", admin.tenant_branding, methods=["POST"]),
        Route("/tenants/{slug}/billing", billing_pages.tenant_billing, methods=["POST"]),
        Route("/tenants/{slug}/events", event_pages.tenant_events, methods=["POST"]),
        Route("/users", admin.users_page),
        Route("/users", admin.user_add, methods=["POST"]),
        Route("/portal", agent_pages.portal_home),
        Route("/portal/{tenant}/agents/{slug}", agent_pages.agent_page),
        Route("/portal/{tenant}/agents/{slug}/draft", agent_pages.agent_save, methods=["POST"]),
        Route(
            "/portal/{tenant}/agents/{slug}/publish", agent_pages.agent_publish, methods=["POST"]
        ),
        Route(
            "/portal/{tenant}/agents/{slug}/rollback", agent_pages.agent_rollback, methods=["POST"]
        ),
        Route("/portal/{tenant}/agents/{slug}/chat", testers.chat, methods=["POST"]),
        Route("/portal/{tenant}/agents/{slug}/talk", testers.talk_token, methods=["POST"]),
        Route("/portal/{tenant}/settings", agent_pages.settings_page),
        Route("/portal/{tenant}/settings", agent_pages.settings_save, methods=["POST"]),
        Route("/approvals", agent_pages.approvals_page),
        Route("/approvals/{approval_id:row_id}", agent_pages.approval_decide, methods=["POST"]),
        Route("/api/calls", api.api_calls),
        Route("/api/calls/{call_sid}", api.api_call),
        Route("/api/live/events", api.live_events),
        Route("/api/calls/{call_sid}/hangup", live_control.hangup, methods=["POST"]),
        Route("/api/calls/{call_sid}/transfer", live_control.transfer, methods=["POST"]),
        Route("/api/leads", api.api_leads),
        Route("/api/sms/{thread_id:row_id}", api.api_sms_thread),
        Mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="dashboard-static"),
    ]
