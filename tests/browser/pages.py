"""For the browser tests: Debian's Chromium driven by Playwright (no browser download), a login,
the "nothing overflows" check and the docs' screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 900
PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh headless Chromium page at 1280 x 900.

    Playwright's sync API runs an event loop in this thread, so the ORM calls a test makes
    between browser steps get a database connection of their own (Django keys connections by
    context there); it is closed here, or it would outlive the test database."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
            yield context.new_page()
        finally:
            browser.close()
            connections.close_all()


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base_url}/")


def overflow(page: Any) -> tuple[int, int]:
    """(document width, window width): the page fits when the first is not larger."""
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def assert_fits(page: Any) -> None:
    width, window = overflow(page)
    assert width <= window, f"{page.url} is {width} px wide in a {window} px window"


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Into SCREENSHOT_DIR when set (``SCREENSHOT_DIR=docs`` refreshes the docs' images)."""
    target = os.environ.get("SCREENSHOT_DIR")
    if target:
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=full_page)
