"""The client portal (#13) in Debian's chromium: edit the draft, see the greeting rendered,
publish, and the next simulated call (the real media websocket) greets with the new
words; approval required and granted; rollback; the text tester; the browser voice tester
with a fake microphone fed a committed caller WAV, on the offline pipeline: the agent is
heard and the live transcript shows both sides. The call is stored as a test call. The
voice, language and turn-taking fields; the calls list labelling and filtering test calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.app.test_tenant_agents_calls import greeting_of_call
from tests.dashboard.browser_support import BROWSER_MARKS, chromium, shot, sign_in
from tests.dashboard.conftest import ACME_CALL, ACME_NUMBER, ACME_STAFF, ADMIN, seed
from tests.dashboard.seed import SeedTurn, add_call
from voice_agent.demo import running_server
from voice_agent.providers.base import Pipeline
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.tables import calls

CALLER_WAV = Path(__file__).parent / "fixtures" / "caller.wav"
AGENT = "/portal/acme/agents/receptionist"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium with a fake microphone that plays the committed caller WAV."""
    fake_microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={CALLER_WAV}",
    ]
    async with chromium(fake_microphone) as launched:
        yield launched


async def portal(browser: Browser, settings: Settings, email: str) -> Page:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    await context.grant_permissions(["microphone"], origin=settings.public_base_url)
    page = await context.new_page()
    await sign_in(page, settings.public_base_url, email)
    return page


async def test_edit_publish_and_the_next_call_greets_with_the_new_words(
    browser: Browser, served_with_number: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served_with_number
    page = await portal(browser, settings, ACME_STAFF)
    await page.click("nav >> text=Agent")
    await page.wait_for_url(settings.public_base_url + AGENT)
    await page.fill("#var-business_name", "Acme Plumbing")
    await page.fill("#field-greeting", "Welcome to {business_name}, the leak experts. Who is this?")
    await page.click("#save-draft")
    await expect(page.locator("#rendered-greeting")).to_have_text(
        "Welcome to Acme Plumbing, the leak experts. Who is this?"
    )
    await page.click("#publish")
    await expect(page.locator("#notice")).to_have_text("Published version 1")
    published_at = time.perf_counter()
    await shot(page, "portal-published")
    greeting, version = await greeting_of_call(settings, runtime, ACME_NUMBER)
    print(f"publish -> first call greeted: {(time.perf_counter() - published_at) * 1000:.0f} ms")
    assert greeting == "Welcome to Acme Plumbing, the leak experts. Who is this?"
    assert version == 1


async def test_approval_required_granted_then_rollback(
    browser: Browser, served_with_number: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served_with_number
    tenant = await runtime.tenants.get("acme")
    tenant.require_approval = True
    await runtime.tenants.save(tenant)

    staff = await portal(browser, settings, ACME_STAFF)
    await staff.goto(settings.public_base_url + AGENT)
    await expect(staff.locator("#needs-approval")).to_be_visible()
    await staff.fill("#field-greeting", "First words from {business_name}.")
    await staff.click("#publish")
    await expect(staff.locator("#notice")).to_have_text("Sent for approval")
    await expect(staff.locator("#pending-approval")).to_be_visible()
    assert runtime.agent_for("acme", "receptionist")[1] is None

    admin = await portal(browser, settings, ADMIN)
    await admin.click("nav >> text=Approvals")
    row = admin.locator("#approvals tbody tr").first
    await expect(row).to_contain_text("First words from {business_name}.")
    await row.locator("button[value=approve]").click()
    await expect(admin.locator("#no-approvals")).to_be_visible()
    agent, version = runtime.agent_for("acme", "receptionist")
    assert version == 1 and agent is not None
    assert agent.render_speech(agent.greeting) == "First words from Acme Home Services."

    # The admin publishes a second version straight away; staff roll back to the first.
    await admin.goto(settings.public_base_url + AGENT)
    await admin.fill("#field-greeting", "Second words.")
    await admin.click("#publish")
    await expect(admin.locator("#notice")).to_have_text("Published version 2")
    assert (await greeting_of_call(settings, runtime, ACME_NUMBER))[0] == "Second words."

    await staff.goto(settings.public_base_url + AGENT)
    await staff.click("#rollback-1")
    await expect(staff.locator("#notice")).to_have_text("Rolled back: version 3")
    await expect(staff.locator("#version-3")).to_contain_text("rollback to v1")
    await shot(staff, "portal-rolled-back")
    greeting, version = await greeting_of_call(settings, runtime, ACME_NUMBER)
    assert (greeting, version) == ("First words from Acme Home Services.", 3)


async def test_text_tester_answers_on_the_dialogue_engine(
    browser: Browser, served_with_number: tuple[Settings, Runtime]
) -> None:
    settings, _ = served_with_number
    page = await portal(browser, settings, ACME_STAFF)
    await page.goto(settings.public_base_url + AGENT)
    await page.fill("#chat-input", "Hi, do you fix roofs?")
    await page.click("#chat-send")
    agent_line = page.locator("#chat-log li.agent").first
    await expect(agent_line).not_to_be_empty()
    assert (await agent_line.inner_text()).startswith("Agent: ")
    assert len(await agent_line.inner_text()) > len("Agent: ")


@pytest.fixture
async def offline_served(
    make_settings: Callable[..., Settings], offline_pipeline: Pipeline, recording: Path
) -> AsyncIterator[tuple[Settings, Runtime]]:
    settings = make_settings(analysis_enabled=False)
    async with running_server(settings, pipeline=offline_pipeline) as runtime:
        await seed(runtime, recording)
        yield settings, runtime


async def test_browser_voice_tester_hears_the_agent_and_shows_the_transcript(
    browser: Browser, offline_served: tuple[Settings, Runtime]
) -> None:
    settings, runtime = offline_served
    page = await portal(browser, settings, ACME_STAFF)
    await page.goto(settings.public_base_url + AGENT)
    await page.fill("#field-greeting", "Hello from the Acme test line. Who am I speaking with?")
    await page.click("#save-draft")  # the tester runs the draft: nothing published
    await page.click("#talk")
    transcript = page.locator("#talk-transcript")
    await expect(transcript.locator("li.agent").first).to_contain_text(
        "Hello from the Acme test line", timeout=20_000
    )
    # The fake microphone says "Hi, my name is Sarah Johnson." after 3 s of silence.
    await expect(transcript.locator("li.caller").first).to_contain_text("Sarah", timeout=30_000)
    await expect(transcript.locator("li.agent").nth(1)).to_contain_text("Sarah", timeout=20_000)
    heard = int(await page.locator("#testers").get_attribute("data-agent-audio") or 0)
    assert heard > 8000  # more than a second of the agent's audio reached the page
    await shot(page, "portal-voice-tester")
    await page.click("#hang-up")
    assert await runtime.writes.flush(5.0)
    async with runtime.database.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    calls.c.call_sid, calls.c.is_test, calls.c.tenant, calls.c.agent_version
                ).where(calls.c.from_number == "browser")
            )
        ).one()
    assert (row.is_test, row.tenant, row.agent_version) == (True, "acme", None)
    stored = await runtime.calls.get_call(row.call_sid)
    assert stored is not None
    answered = [t for t in stored.turns if t.role == "agent" and t.total_ms is not None]
    assert answered
    round_trip = answered[0].total_ms
    print(f"browser tester round trip (end of speech -> first agent audio): {round_trip:.0f} ms")


async def test_voice_language_and_turn_taking_in_the_form(
    browser: Browser, served_with_number: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served_with_number
    page = await portal(browser, settings, ACME_STAFF)
    await page.goto(settings.public_base_url + AGENT)
    await page.select_option("#field-language", "es")
    await page.select_option("#voice-cascade", "coral")
    await page.fill("#turn-silence_ms", "soon")
    await page.click("#publish")
    await expect(page.locator("#draft-error")).to_have_text(
        "turn_taking.silence_ms: must be an integer in [0, 5000]"
    )
    assert runtime.agent_for("acme", "receptionist")[1] is None
    await page.fill("#turn-silence_ms", "650")
    await page.check("#turn-text_aware")
    await page.click("#publish")
    await expect(page.locator("#notice")).to_have_text("Published version 1")
    await expect(page.locator("#field-language")).to_have_value("es")
    await expect(page.locator("#voice-cascade")).to_have_value("coral")
    await expect(page.locator("#turn-text_aware")).to_be_checked()
    await shot(page, "portal-speech-fields")
    agent, _ = runtime.agent_for("acme", "receptionist")
    assert agent is not None and (agent.language, agent.voice) == ("es", "coral")
    assert (agent.turn_taking.silence_ms, agent.turn_taking.text_aware) == (650, True)


async def test_calls_list_labels_and_filters_test_calls(
    browser: Browser, served_with_number: tuple[Settings, Runtime]
) -> None:
    settings, runtime = served_with_number
    test_call = "CT" + "d" * 32
    await add_call(
        runtime.database, test_call, "acme", [SeedTurn("agent", "Draft hi", 0.1, 1.0)], is_test=True
    )
    page = await portal(browser, settings, ACME_STAFF)
    await expect(page.locator(f'tr[data-call-sid="{test_call}"] .pill.test')).to_have_text("test")
    await expect(page.locator(f'tr[data-call-sid="{ACME_CALL}"] .pill.test')).to_have_count(0)
    await page.select_option("#filter-tests", "exclude")
    await page.click("#filters button[type=submit]")
    await expect(page.locator(f'tr[data-call-sid="{test_call}"]')).to_have_count(0)
    await expect(page.locator(f'tr[data-call-sid="{ACME_CALL}"]')).to_have_count(1)
    await page.select_option("#filter-tests", "only")
    await page.click("#filters button[type=submit]")
    await expect(page.locator("#calls tbody tr[data-call-sid]")).to_have_count(1)
    await shot(page, "calls-test-only")
