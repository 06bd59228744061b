"""The tenant's own events webhook on the admin tenant page: checked fields, the secret
never shown back in full, a generated one shown once, staff kept out, and the saved
override used by the delivery at once."""

from __future__ import annotations

from tests.dashboard.conftest import (
    ACME_STAFF,
    ADMIN,
    AsUser,
    Site,
    as_user,
    csrf_of,
    recording,
    site,
    standin,
)
from voice_agent.events.secret import new_secret

__all__ = ["as_user", "recording", "site", "standin"]


async def test_admin_sets_a_tenant_webhook_and_the_secret_is_never_shown_again(
    as_user: AsUser, site: Site
) -> None:
    admin = await as_user(ADMIN)
    page = (await admin.get("/tenants/acme")).text
    assert 'id="events-form"' in page
    secret = new_secret()
    url = "https://n8n.example.com/webhook/acme"
    saved = await admin.post(
        "/tenants/acme/events",
        data={"events_url": url, "events_secret": secret, "csrf_token": csrf_of(page)},
    )
    assert saved.status_code == 303
    page = (await admin.get("/tenants/acme")).text
    assert url in page
    assert secret not in page and secret[-4:] in page  # its end only, as a placeholder
    events = site.runtime.events
    assert events is not None
    target = await events.targets.resolve("acme")
    assert target is not None and target.url == url and target.own
    assert await events.targets.resolve("globex") is None  # no global webhook set

    # Saved again with the secret left blank: the stored one is kept.
    other = "https://n8n.example.com/webhook/acme-2"
    await admin.post(
        "/tenants/acme/events",
        data={"events_url": other, "events_secret": "", "csrf_token": csrf_of(page)},
    )
    stored = await events.targets.repository.get("acme")
    assert (stored.url, stored.secret) == (other, secret)

    # "new" makes one, shown this once.
    fresh = await admin.post(
        "/tenants/acme/events",
        data={"events_url": other, "events_secret": "new", "csrf_token": csrf_of(page)},
    )
    assert fresh.status_code == 200 and 'id="new-events-secret"' in fresh.text
    made = (await events.targets.repository.get("acme")).secret
    assert made and made != secret and made in fresh.text
    assert made not in (await admin.get("/tenants/acme")).text

    # An empty URL removes the override.
    await admin.post(
        "/tenants/acme/events",
        data={"events_url": "", "events_secret": "", "csrf_token": csrf_of(page)},
    )
    assert await events.targets.resolve("acme") is None


async def test_bad_fields_are_refused_and_staff_kept_out(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    page = (await admin.get("/tenants/acme")).text
    bad = await admin.post(
        "/tenants/acme/events",
        data={"events_url": "ftp://x", "events_secret": "whsec_short", "csrf_token": csrf_of(page)},
    )
    assert bad.status_code == 400
    assert "events_url" in bad.text and "events_secret" in bad.text
    no_secret = await admin.post(
        "/tenants/acme/events",
        data={"events_url": "https://x.example.com/", "csrf_token": csrf_of(page)},
    )
    assert no_secret.status_code == 400
    assert site.runtime.events is not None
    assert (await site.runtime.events.targets.repository.get("acme")).url is None

    staff = await as_user(ACME_STAFF)
    own = (await staff.get("/calls")).text
    refused = await staff.post(
        "/tenants/acme/events",
        data={"events_url": "https://evil.example.com/", "csrf_token": csrf_of(own)},
    )
    assert refused.status_code in (403, 404)
    assert (await site.runtime.events.targets.repository.get("acme")).url is None
