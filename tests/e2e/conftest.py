"""Browser tests: real headless Chromium (Debian's package) driven by Playwright, against the live
server, with a real Celery worker. Screenshots go to test-output/screenshots/ (not committed).

Every page a test opens runs under the service's Content-Security-Policy (config/security.py):
a test fails when Chromium refused anything under it (`new_page` collects the console's CSP
messages and asserts there were none)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

# Playwright's sync API keeps an event loop on this thread; the test body's ORM calls are still
# plain synchronous code, as Django's docs say for this case.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (see .ci/run).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def is_csp_violation(message: ConsoleMessage) -> bool:
    """Chromium reports what the policy refused as a console error ("Refused to execute inline
    script because it violates the following Content Security Policy directive: ...")."""
    return "content security policy" in message.text.lower()


@pytest.fixture
def csp_violations() -> list[str]:
    """What Chromium refused under the CSP on the pages of this test (`new_page` fills it)."""
    return []


@pytest.fixture
def new_page(browser: Browser, live_server, csp_violations: list[str]) -> Iterator:
    """`new_page(width=1280)`: a fresh browser context (own cookies) on the live server. After
    the test, asserts that no page of it hit a CSP violation."""
    contexts: list[BrowserContext] = []

    def record(message: ConsoleMessage) -> None:
        if is_csp_violation(message):
            csp_violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def make(width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        context.on("console", record)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        for page in context.pages:
            # A round trip, so console events sent before it are delivered (a page closed or
            # navigating has delivered what it logged so far).
            with contextlib.suppress(PlaywrightError):
                page.evaluate("0")
        context.close()
    assert csp_violations == [], "Chromium refused under the CSP:\n" + "\n".join(csp_violations)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/settings/model-providers/")


def assert_fits(page: Page, what: str = "") -> None:
    """The page (and an open dialog) scroll no wider than the viewport: nothing is off screen
    sideways at this width (issue 13: usable at 390 px)."""
    widths = page.evaluate(
        """() => {
          const d = document.getElementById("dialog");
          const open = d && d.open ? d.querySelector(".dialog-inner") : null;
          return {
            viewport: window.innerWidth,
            page: document.documentElement.scrollWidth,
            dialog: open ? open.scrollWidth - open.clientWidth : 0,
          };
        }"""
    )
    assert widths["page"] <= widths["viewport"], f"{what or page.url} scrolls sideways: {widths}"
    assert widths["dialog"] <= 0, f"{what or page.url}: the dialog scrolls sideways: {widths}"
