"""Flows that cross features: SMS compliance meeting the dialer, a recorded call reaching the
dashboard. The outbound server fixtures (Twilio and OpenAI stand-ins, a movable clock) are
reused as they are."""

from tests.outbound.conftest import (  # noqa: F401 - fixtures used here
    clock,
    outbound_settings,
    serve,
    server,
    twilio,
)
