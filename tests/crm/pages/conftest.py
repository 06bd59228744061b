"""The dashboard's fixtures (two tenants, their staff, an admin), for the person pages."""

from tests.dashboard.conftest import as_user, recording, site, standin

__all__ = ["as_user", "recording", "site", "standin"]
