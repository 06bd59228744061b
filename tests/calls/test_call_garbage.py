"""A finished call is freed as it ends: none of its objects wait for the cycle collector.

That is what lets the server freeze survivors (voice_agent/heap.py) so full collections
stay short: a call's objects in a reference cycle would be frozen with it and kept.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable

from loadtest.caller import place_call
from loadtest.standins.openai_server import StandinOpenAI
from tests.calls.cascade_support import short_responder
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import demo_turns, running_server
from voice_agent.settings import Settings

#: The server side of a call. Test-side objects (the caller's websocket client and its
#: HTTP client) are not the server's.
_OURS = (
    "voice_agent.",
    "media.",
    "prompts.",
    "websockets.server",
    "sqlalchemy.",
    "uvicorn.",
    "httptools.",
)


async def test_a_finished_call_leaves_no_cycles(
    standin: StandinOpenAI, cascade_settings: Callable[..., Settings]
) -> None:
    standin.responder = short_responder
    settings = cascade_settings()
    async with running_server(settings) as runtime:
        # Frozen objects are out of the collector's sight (the server freezes survivors
        # while calls are up): unfreeze so the check sees every object.
        gc.unfreeze()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            result = await place_call(
                settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN
            )
            assert await runtime.writes.flush(5.0)
            assert not runtime.live_calls
            gc.unfreeze()
            gc.collect()
            garbage = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.freeze()
    assert result.error is None, result.error
    assert len(result.turns) == len(demo_turns())
    # Before: every call's session, tap, listener, recording, websocket protocol and buffers
    # (the tap and session, the listener and session, uvicorn's protocol and its scope held
    # each other), the SQLAlchemy alias of every upsert built per batch write and the bound
    # parameters of its call id lookup, and uvicorn's HTTP protocol and parser of the
    # media stream's upgraded connection.
    ours = {name: n for name, n in garbage.items() if name.startswith(_OURS)}
    assert ours == {}
