"""What every Playwright test of the dashboard shares: Debian's chromium launched with
the same flags (plus any a test adds, such as a fake microphone), requests kept on
loopback, signing in, screenshots to ./test-artifacts/dashboard/ (ignored by git; CI
keeps them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from tests.dashboard.seed import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The player is started by the test's click, but keep media from waiting on a gesture.
    "--autoplay-policy=no-user-gesture-required",
]
#: pytestmark of every browser test module.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium;"
        " .ci/run installs it)",
    ),
]


@contextlib.asynccontextmanager
async def chromium(extra_args: Sequence[str] = ()) -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*LAUNCH_ARGS, *extra_args], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def loopback_only(page: Page) -> None:
    """Requests leaving loopback (a tenant's logo on a CDN) are refused: tests reach no one."""

    async def route(r: Route) -> None:
        if r.request.url.startswith(("http://127.0.0.1", "data:")):
            await r.continue_()
        else:
            await r.abort()

    await page.route("**/*", route)


async def sign_in(page: Page, base_url: str, email: str) -> None:
    await loopback_only(page)
    await page.goto(base_url + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login button[type=submit]")
    await page.wait_for_url(base_url + "/calls")


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
