"""Import directions (ARCHITECTURE.md): the dashboard reaches calls through storage and the
bus, never through the telephony layer, the conversation core, the providers or the
webhooks; the browser tester's media websocket is composed by the app instead."""

from __future__ import annotations

from pathlib import Path

import voice_agent.dashboard as dashboard
from tests.imports import imported_modules

FORBIDDEN = (
    "voice_agent.telephony",
    "voice_agent.conversation",
    "voice_agent.providers",
    "webhooks",
)


def test_dashboard_imports_no_telephony_conversation_or_providers() -> None:
    assert dashboard.__file__ is not None
    files = sorted(Path(dashboard.__file__).parent.glob("*.py"))
    assert len(files) > 10
    bad = {
        (path.name, name)
        for path in files
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, sorted(bad)


def test_the_app_composes_the_tester_websocket() -> None:
    from starlette.routing import WebSocketRoute

    from voice_agent.app import create_app
    from voice_agent.dashboard.routes import dashboard_routes
    from voice_agent.dashboard.testers import TALK_PATH
    from voice_agent.settings import load_settings

    assert all(getattr(r, "path", "") != TALK_PATH for r in dashboard_routes())
    app = create_app(load_settings(database_url="sqlite:///unused.db"))
    sockets = [r.path for r in app.routes if isinstance(r, WebSocketRoute)]
    assert TALK_PATH in sockets
