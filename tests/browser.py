"""A real browser for the web console's tests: Playwright driving Debian's Chromium.

``playwright install`` cannot download a browser here, so the tests use the
system's ``/usr/bin/chromium`` (``.ci/system-packages`` installs it). Without
it the browser tests skip with the reason, except under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path("/usr/bin/chromium")
#: A phone: the portal's first audience.
PHONE: ViewportSize = {"width": 390, "height": 844}
LOCALES = {"en": "en-US", "zh-Hans": "zh-CN"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per test module: Playwright's sync API keeps an event loop on the
    thread while it runs, and tests of other modules start their own with asyncio.run."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and /usr/bin/chromium is missing: .ci/system-packages installs it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page whose console errors and CSP violations are kept for the test to check."""

    page: Page
    language: str
    errors: list[str] = field(default_factory=list)

    def unexpected_errors(self, *expected_statuses: int) -> list[str]:
        """Console errors, less the browser's and htmx's notes of each answer the test
        meant to get."""
        expected = tuple(
            note
            for status in expected_statuses
            for note in (f"status of {status}", f"Error Code {status} ")
        )
        return [e for e in self.errors if not any(word in e for word in expected)]

    def csp_violations(self) -> list[str]:
        self.page.wait_for_load_state()
        found: list[str] = self.page.evaluate("window.cspViolations || []")
        return found

    def scrolls_sideways(self) -> bool:
        # A click may have started a navigation: measure the page it lands on.
        for _ in range(3):
            self.page.wait_for_load_state()
            try:
                wider: bool = self.page.evaluate(
                    "document.documentElement.scrollWidth > document.documentElement.clientWidth"
                )
            except PlaywrightError:  # the document went away under the measurement
                continue
            return wider
        raise AssertionError("the page never settled long enough to be measured")


def phone_page(browser: Browser, base_url: str, language: str) -> Iterator[Watched]:
    context = browser.new_context(
        base_url=base_url, viewport=PHONE, locale=LOCALES[language], accept_downloads=True
    )
    # Recorded in the page itself: the browser reports a violation there too.
    context.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    watched = Watched(page, language)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    try:
        yield watched
    finally:
        context.close()
