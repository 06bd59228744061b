"""The OpenAPI 3.1 document of every HTTP route: webhooks, JSON API, pages, probes.

Served at /openapi.json. tests/app/test_openapi.py checks it against the app's routes (a
route missing here fails that test), and schemathesis fuzzes the running app from it.
Each operation says what it takes; the responses list what a caller may get back, so bad
input is a documented 4xx and anything 5xx is a bug.
"""

from __future__ import annotations

from typing import Any

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_XML = {"text/xml": {"schema": {"type": "string"}}}
_JSON_ANY = {"application/json": {"schema": {"type": "object"}}}
_ERRORS = {"application/json": {"schema": {"type": "object"}}, **_TEXT, **_HTML}


def _string(description: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def _form(fields: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": fields,
                    **({"required": list(required)} if required else {}),
                }
            }
        },
    }


def _responses(ok: str, content: dict[str, Any], *codes: str) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "done", "content": content}}
    for code in codes:
        responses[code] = {"description": _REASONS[code], "content": _ERRORS}
    return responses


_REASONS = {
    "200": "done (a form shown again with its errors, or an answer already given)",
    "206": "part of the file (HTTP Range)",
    "303": "signed out (to the login page) or done (to the next page)",
    "400": "bad input: the body says which field and why",
    "401": "signed out (JSON API) or missing credentials",
    "403": "bad signature, secret or CSRF token",
    "404": "no such thing in the viewer's tenant",
    "409": "conflicts with what is stored",
    "413": "body too large",
    "416": "range not satisfiable",
    "422": "understood but refused",
    "429": "rate limited",
    "503": "a dependency is down",
}


def _query(name: str, description: str = "", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", **schema},
        **({"description": description} if description else {}),
    }


def _path(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema}}


_SIGNED = [
    {
        "name": "X-Twilio-Signature",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "HMAC-SHA1 of the URL and form (refused with 403 when wrong or absent)",
    }
]

_TWILIO_CALL = {
    "CallSid": _string("the call", pattern="^CA[0-9a-f]{32}$"),
    "AccountSid": _string(),
    "From": _string(),
    "To": _string(),
    "CallStatus": _string(),
    "Direction": _string(),
}


def _twilio(summary: str, fields: dict[str, Any], ok: dict[str, Any], query: list[Any]) -> Any:
    return {
        "post": {
            "summary": summary,
            "tags": ["twilio"],
            "parameters": _SIGNED + query,
            "requestBody": _form(fields),
            "responses": _responses("200", ok, "400", "403", "404", "503"),
        }
    }


def _page(summary: str, *params: dict[str, Any], extra: tuple[str, ...] = ()) -> Any:
    return {
        "get": {
            "summary": summary,
            "tags": ["dashboard"],
            "parameters": list(params),
            "responses": _responses("200", _HTML, "303", "400", "404", *extra),
        }
    }


def _post(summary: str, fields: dict[str, Any], *params: dict[str, Any], tag: str = "dashboard"):
    return {
        "post": {
            "summary": summary,
            "tags": [tag],
            "parameters": list(params),
            "requestBody": _form({"csrf_token": _string("the form's CSRF token"), **fields}),
            "responses": _responses("303", _HTML, "200", "400", "401", "403", "404", "409", "429"),
        }
    }


def _api(summary: str, *params: dict[str, Any], content: dict[str, Any] = _JSON_ANY) -> Any:
    return {
        "get": {
            "summary": summary,
            "tags": ["api"],
            "parameters": list(params),
            "responses": _responses("200", content, "206", "400", "401", "404", "416"),
        }
    }


_CALL_SID = _path("call_sid")
_FILTERS = [
    _query("q", "words in the transcript"),
    _query("status"),
    _query("direction"),
    _query("agent"),
    _query("outcome"),
    _query("tenant"),
    _query("from"),
    _query("to"),
    _query("since", "ISO date"),
    _query("until", "ISO date"),
    _query("tests", "browser test calls: include (default), exclude or only"),
    _query("cursor"),
]


def _paths() -> dict[str, Any]:
    return {
        # --- webhooks ------------------------------------------------------------------
        "/twilio/voice": _twilio(
            "Incoming or answered call: TwiML that connects a Media Stream",
            _TWILIO_CALL,
            _XML,
            [_query("scheduled")],
        ),
        "/twilio/resume": _twilio(
            "A call whose stream dropped: TwiML that reconnects it", _TWILIO_CALL, _XML, []
        ),
        "/twilio/sms": _twilio(
            "Incoming SMS",
            {"MessageSid": _string(), "From": _string(), "To": _string(), "Body": _string()},
            _XML,
            [],
        ),
        "/twilio/sms/status": _twilio(
            "SMS delivery status",
            {"MessageSid": _string(), "MessageStatus": _string(), "ErrorCode": _string()},
            _TEXT,
            [_query("m", "our message id")],
        ),
        "/twilio/status": _twilio(
            "Call status callback",
            {**_TWILIO_CALL, "CallDuration": _string(), "Price": _string(), "PriceUnit": _string()},
            _TEXT,
            [_query("scheduled")],
        ),
        "/twilio/amd": _twilio(
            "Answering machine detection result",
            {"CallSid": _string(), "AnsweredBy": _string()},
            _TEXT,
            [_query("scheduled")],
        ),
        "/twilio/whisper": _twilio(
            "Warm transfer: what the agent's human hears first",
            {"CallSid": _string()},
            _XML,
            [_query("t", "transfer token")],
        ),
        "/twilio/transfer": _twilio(
            "Warm transfer: how the dial ended",
            {"CallSid": _string(), "DialCallStatus": _string()},
            _XML,
            [_query("t"), _query("n")],
        ),
        "/webhooks/lead": {
            "post": {
                "summary": "A lead from a web form: stored, then called",
                "tags": ["webhooks"],
                "parameters": [
                    {
                        "name": "Authorization",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Bearer LEAD_WEBHOOK_SECRET",
                    },
                    _query("tenant"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "phone": _string(),
                                    "first_name": _string(),
                                    "last_name": _string(),
                                    "email": _string(),
                                    "tenant": _string(),
                                    "consent": {"type": "boolean"},
                                },
                            }
                        },
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    },
                },
                "responses": _responses(
                    "201", _JSON_ANY, "200", "400", "401", "403", "413", "422", "429", "503"
                ),
            }
        },
        "/webhooks/stripe": {
            "post": {
                "summary": "Stripe events (signed with the webhook secret)",
                "tags": ["webhooks"],
                "parameters": [
                    {
                        "name": "Stripe-Signature",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {"required": True, "content": _JSON_ANY},
                "responses": _responses("200", _JSON_ANY, "400", "403", "404", "503"),
            }
        },
        # --- probes ----------------------------------------------------------------------
        "/healthz": {"get": {"summary": "liveness", "responses": _responses("200", _TEXT)}},
        "/readyz": {
            "get": {"summary": "readiness", "responses": _responses("200", _JSON_ANY, "503")}
        },
        "/metrics": {"get": {"summary": "Prometheus", "responses": _responses("200", _TEXT)}},
        "/openapi.json": {
            "get": {"summary": "this document", "responses": _responses("200", _JSON_ANY)}
        },
        # --- dashboard pages -------------------------------------------------------------
        "/": _page("home: to the call list"),
        "/login": {
            **_page("sign-in form", _query("next")),
            **_post(
                "sign in",
                {"email": _string(), "password": _string(), "next": _string()},
                tag="auth",
            ),
        },
        "/logout": _post("sign out", {}, tag="auth"),
        "/calls": _page("call list", *_FILTERS),
        "/calls/{call_sid}": _page("one call", _CALL_SID),
        "/calls/{call_sid}/recording": _api(
            "the call's recording (HTTP Range)",
            _CALL_SID,
            content={"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        ),
        "/calls/{call_sid}/transcript.json": _api("transcript as JSON", _CALL_SID),
        "/calls/{call_sid}/transcript.txt": _api("transcript as text", _CALL_SID, content=_TEXT),
        "/calls/{call_sid}/person": _page("the caller's person page", _CALL_SID),
        "/live": _page("live calls"),
        "/leads": _page("leads", _query("status")),
        "/leads/{lead_id}/person": _page("the lead's person page", _path("lead_id")),
        "/people/{person_id}": _page("a person", _path("person_id", pattern="^[0-9]+$")),
        "/sms": _page("SMS threads"),
        "/sms/{thread_id}": _page("one SMS thread", _path("thread_id")),
        "/tenants": {
            **_page("tenants (admin)"),
            **_post(
                "add a tenant",
                {
                    "slug": _string(),
                    "name": _string(),
                    "timezone": _string(),
                    "agent": _string(),
                    "transfer_number": _string(),
                },
            ),
        },
        "/tenants/{slug}": _page("one tenant (admin)", _path("slug")),
        "/tenants/{slug}/numbers": _post(
            "route a number to the tenant", {"number": _string(), "agent": _string()}, _path("slug")
        ),
        "/tenants/{slug}/numbers/remove": _post(
            "remove a number", {"number": _string()}, _path("slug")
        ),
        "/tenants/{slug}/branding": _post(
            "name, colour and logo",
            {"name": _string(), "brand_color": _string(), "logo_url": _string()},
            _path("slug"),
        ),
        "/tenants/{slug}/billing": _post(
            "plan, caps and Stripe customer", {"action": _string()}, _path("slug")
        ),
        "/users": {
            **_page("staff accounts (admin)"),
            **_post(
                "add a staff account",
                {"email": _string(), "password": _string(), "role": _string(), "tenant": _string()},
            ),
        },
        "/tenants/{slug}/events": _post(
            "the tenant's event webhook overrides", {"url": _string()}, _path("slug")
        ),
        # --- client portal (per-tenant agents) ----------------------------------------------
        "/portal": _page("the portal: the viewer's tenants and agents"),
        "/portal/{tenant}/agents/{slug}": _page(
            "one agent: draft, versions, testers", _path("tenant"), _path("slug")
        ),
        "/portal/{tenant}/agents/{slug}/draft": _post(
            "save the draft", {"definition": _string()}, _path("tenant"), _path("slug")
        ),
        "/portal/{tenant}/agents/{slug}/publish": _post(
            "publish the draft (or ask for approval)", {}, _path("tenant"), _path("slug")
        ),
        "/portal/{tenant}/agents/{slug}/rollback": _post(
            "go back to a version", {"version": _string()}, _path("tenant"), _path("slug")
        ),
        "/portal/{tenant}/agents/{slug}/chat": _post(
            "text tester: one message to the draft",
            {"message": _string()},
            _path("tenant"),
            _path("slug"),
        ),
        "/portal/{tenant}/agents/{slug}/talk": _post(
            "browser tester: a token for its websocket", {}, _path("tenant"), _path("slug")
        ),
        "/portal/{tenant}/settings": {
            **_page("tenant settings", _path("tenant")),
            **_post("save tenant settings", {}, _path("tenant")),
        },
        "/approvals": _page("publications waiting for approval (admin)"),
        "/approvals/{approval_id}": _post(
            "approve or reject",
            {"decision": _string()},
            _path("approval_id", pattern="^[0-9]+$"),
        ),
        # --- JSON API ----------------------------------------------------------------------
        "/api/calls": _api("calls, newest first", *_FILTERS, _query("limit", pattern="^[0-9]+$")),
        "/api/calls/{call_sid}": _api("one call with its transcript", _CALL_SID),
        "/api/calls/{call_sid}/hangup": _post("end a live call", {}, _CALL_SID, tag="api"),
        "/api/calls/{call_sid}/transfer": _post(
            "transfer a live call", {"number": _string()}, _CALL_SID, tag="api"
        ),
        "/api/live/events": _api(
            "live events (server-sent events)",
            _query("call_sid"),
            content={"text/event-stream": {"schema": {"type": "string"}}},
        ),
        "/api/leads": _api("leads", _query("status")),
        "/api/sms/{thread_id}": _api("one SMS thread", _path("thread_id", pattern="^[0-9]+$")),
    }


def openapi_document(base_url: str = "") -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "OrenGen voice agent",
            "version": "1",
            "description": "Webhooks, JSON API and dashboard pages. The Media Stream websocket"
            " is at /twilio/media (Twilio's Media Streams protocol, not described here).",
        },
        "paths": _paths(),
    }
    if base_url:
        document["servers"] = [{"url": base_url}]
    return document
