"""The dashboard in Debian's chromium, driven by Playwright: sign in, filter and search,
open a call, play its recording with the transcript following, seek by clicking a turn,
and watch a live call's transcript grow while the call runs over the media websocket, on
the live page and on the call's own page.

Screenshots go to ./test-artifacts/dashboard/ (ignored by git; CI keeps them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.fixtures import load_script
from tests.conftest import TWILIO_TOKEN
from tests.dashboard.browser_support import BROWSER_MARKS, chromium, shot, sign_in
from tests.dashboard.conftest import ACME_CALL, ACME_STAFF, GLOBEX_CALL
from tests.dashboard.seed import add_user
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings

pytestmark = BROWSER_MARKS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def current_seq(page: Page) -> str | None:
    return await page.evaluate(
        "() => { const el = document.querySelector('#timeline .turn.current');"
        " return el ? el.dataset.seq : null; }"
    )


async def test_review_a_call_with_the_recording_in_sync(
    browser: Browser, served: tuple[Settings, Runtime]
) -> None:
    settings, _ = served
    base = settings.public_base_url
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, base, ACME_STAFF)
    rows = page.locator("#calls tbody tr[data-call-sid]")
    await expect(rows).to_have_count(1)  # acme's call only: globex's is not listed
    assert await page.locator(f'tr[data-call-sid="{GLOBEX_CALL}"]').count() == 0
    await expect(page.locator(".brand-name")).to_have_text("Acme Plumbing")
    await shot(page, "01-calls")

    # Search transcripts and filter.
    await page.fill("input[name=q]", "kitchen sink")
    await page.select_option("select[name=direction]", "inbound")
    await page.click("#filters button[type=submit]")
    await expect(rows).to_have_count(1)
    assert "q=kitchen+sink" in page.url and "direction=inbound" in page.url
    await page.fill("input[name=q]", "volcano")
    await page.click("#filters button[type=submit]")
    await expect(page.locator("#calls td.empty")).to_have_text("No calls match.")
    await page.fill("input[name=q]", "leaking")
    await page.click("#filters button[type=submit]")
    await shot(page, "02-search")

    # Open the call.
    await page.click(f'tr[data-call-sid="{ACME_CALL}"] a')
    await page.wait_for_url(f"{base}/calls/{ACME_CALL}")
    turns = page.locator("#timeline .turn")
    await expect(turns).to_have_count(5)
    # The caller's markup is shown as text, never run.
    await expect(turns.nth(3).locator(".text")).to_have_text(
        '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    )
    await expect(page.locator(".turn.interrupted")).to_have_count(1)
    await expect(page.locator(".waterfall")).to_have_count(2)
    player = page.locator("#player")
    await page.wait_for_function(
        "() => document.querySelector('#player').readyState >= 1"
        " && Math.abs(document.querySelector('#player').duration - 12) < 0.1"
    )

    # Click the caller's first turn: the player seeks to 3.0 s and plays; the highlight is on
    # it, then follows the recording onto the agent's reply at 6.0 s.
    await turns.nth(1).click()
    assert abs(await player.evaluate("p => p.currentTime") - 3.0) < 0.5
    assert await current_seq(page) == "2"
    await page.wait_for_function("() => !document.querySelector('#player').paused")
    await page.wait_for_function(
        "() => document.querySelector('#timeline .turn.current')?.dataset.seq === '3'",
        timeout=10_000,
    )
    assert await player.evaluate("p => p.currentTime") >= 5.9
    await shot(page, "03-call-playing")

    # Click a later turn: the player seeks there and the highlight jumps with it.
    await turns.nth(4).click()
    await page.wait_for_function(
        "() => document.querySelector('#player').currentTime >= 9.9", timeout=5_000
    )
    assert await current_seq(page) == "5"
    await player.evaluate("p => p.pause()")

    # Readable on a phone.
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "04-call-phone")
    scroll_width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= 400, "the call page must not scroll sideways on a phone"

    # The exports are there for the staff member's own call.
    response = await page.request.get(f"{base}/calls/{ACME_CALL}/transcript.json")
    assert response.status == 200 and (await response.json())["call_sid"] == ACME_CALL
    missing = await page.request.get(f"{base}/calls/{GLOBEX_CALL}")
    assert missing.status == 404
    await page.close()


DESK = "desk@default.test"
SAID = ("need", "budget", "goodbye")


async def desk_page(browser: Browser, settings: Settings, runtime: Runtime, height: int) -> Page:
    """A signed-in page of a default-tenant staff member."""
    await add_user(runtime.database, DESK, "staff", "default")
    page = await browser.new_page(viewport={"width": 1024, "height": height})
    await sign_in(page, settings.public_base_url, DESK)
    return page


def start_call(settings: Settings) -> asyncio.Task[CallResult]:
    """A three-turn call placed in the background; its caller's lines are `said_texts()`."""
    said = {u.id: u for u in load_script()}
    script = [CallerTurn(said[name]) for name in SAID]
    return asyncio.create_task(
        place_call(settings.public_base_url, script, auth_token=TWILIO_TOKEN, hangup_wait_s=3.0)
    )


def said_texts() -> list[str]:
    said = {u.id: u.text for u in load_script()}
    return [said[name] for name in SAID]


async def test_live_call_transcript_grows_while_the_call_runs(
    browser: Browser, served: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served
    page = await desk_page(browser, settings, runtime, height=800)
    await page.goto(settings.public_base_url + "/live")
    await expect(page.locator("#live-state")).to_have_text("live")
    await shot(page, "05-live-empty")

    call = start_call(settings)
    card = page.locator("article.live-call")
    lines = card.locator("ol .turn")
    await expect(card).to_have_count(1, timeout=15_000)
    await expect(lines).not_to_have_count(0, timeout=15_000)
    counts = [await lines.count()]
    # Growing while the call runs: more turns appear before it ends.
    for _ in range(2):
        await page.wait_for_function(
            f"() => document.querySelectorAll('article.live-call ol .turn').length > {counts[-1]}",
            timeout=20_000,
        )
        counts.append(await lines.count())
        assert not call.done() or counts[-1] > counts[0]
    await shot(page, "06-live-call")
    result = await asyncio.wait_for(call, 60)
    assert result.error is None, result.error
    await expect(card).to_have_class("card live-call ended", timeout=10_000)
    texts = await card.locator("ol .turn.caller .text").all_inner_texts()
    assert texts == said_texts()
    assert counts == sorted(counts) and counts[-1] > counts[0]
    await shot(page, "07-live-ended")
    await page.close()


async def test_a_running_calls_page_follows_it_and_shows_it_whole_at_the_end(
    browser: Browser, served: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served
    page = await desk_page(browser, settings, runtime, height=900)
    call = start_call(settings)
    for _ in range(500):
        if runtime.live_calls:
            break
        await asyncio.sleep(0.01)
    (call_sid,) = runtime.live_calls
    assert await runtime.writes.flush(5.0)  # the call's row, so its page exists

    await page.goto(f"{settings.public_base_url}/calls/{call_sid}")
    await expect(page.locator("#call-live")).to_have_text("live")
    await expect(page.locator("#call-status")).to_have_text("in-progress")
    lines = page.locator("#timeline .turn")
    await expect(lines).not_to_have_count(0, timeout=15_000)
    before = await lines.count()
    await page.wait_for_function(
        f"() => document.querySelectorAll('#timeline .turn').length > {before}", timeout=20_000
    )
    assert not call.done()  # it grew while the call ran
    await shot(page, "08-call-live")

    result = await asyncio.wait_for(call, 60)
    assert result.error is None, result.error
    # Reloaded once the call ended: the stored call, not the live one.
    await expect(page.locator("#call-live")).to_have_count(0, timeout=10_000)
    await expect(page.locator("#call-status")).to_have_text("completed")
    texts = await page.locator("#timeline .turn.caller .text").all_inner_texts()
    assert texts == said_texts()
    stamps = await page.locator("#timeline .turn .stamp").all_inner_texts()
    assert stamps[0] == "0:00" and len(stamps) == await lines.count()
    await shot(page, "09-call-ended")
    await page.close()


async def test_admin_sets_a_tenants_number_and_brand_seen_by_its_staff(
    browser: Browser, served: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served
    base = settings.public_base_url
    admin = await browser.new_page(viewport={"width": 1100, "height": 900})
    await sign_in(admin, base, "admin@example.com")
    # Admins see every tenant's calls.
    await expect(admin.locator("#calls tbody tr[data-call-sid]")).to_have_count(2)
    await admin.click("nav >> text=Tenants")
    await admin.click("#tenants >> text=acme")
    await admin.wait_for_url(base + "/tenants/acme")
    await admin.fill("#add-number input[name=number]", "(415) 555-0134")
    await admin.click("#add-number button[type=submit]")
    await expect(admin.locator("#numbers li .mono")).to_have_text(["+14155550134"])
    await admin.fill("#branding input[name=brand_color]", "#7c3aed")
    await admin.fill("#branding input[name=name]", "Acme Plumbing & Heating")
    await admin.click("#branding button[type=submit]")
    await shot(admin, "08-tenant-admin")
    assert await runtime.tenants.numbers("acme") == [("+14155550134", None)]

    staff = await browser.new_page(viewport={"width": 390, "height": 844})
    await sign_in(staff, base, ACME_STAFF)
    await expect(staff.locator(".brand-name")).to_have_text("Acme Plumbing & Heating")
    color = await staff.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
    )
    assert color == "#7c3aed"
    # Staff have no tenant pages.
    assert await staff.locator("nav >> text=Tenants").count() == 0
    response = await staff.goto(base + "/tenants/acme")
    assert response is not None and response.status == 404
    await staff.goto(base + "/calls")
    await shot(staff, "09-calls-phone-branded")
    await admin.close()
    await staff.close()
