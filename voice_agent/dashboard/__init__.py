"""Staff dashboard: calls with synced recordings and latency, live calls, leads, SMS threads,
tenant administration. Server-rendered; every read scoped to the viewer's tenant."""

from voice_agent.dashboard.routes import dashboard_routes
from voice_agent.dashboard.state import Dashboard

__all__ = ["Dashboard", "dashboard_routes"]
