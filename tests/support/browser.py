"""Headless Chromium (Debian's package) driven by Playwright, for dashboard and widget tests.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``HERALD_CHROMIUM``
overrides). Screenshots go to ``artifacts/screenshots/`` in the repository, kept by CI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Without the background-networking switches Chromium keeps calling out to Google's hosts, which
# a closed network refuses; the rest keep a root user in a container working.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API keeps an event loop in this thread; the test's own ORM calls between
# browser steps are synchronous and safe, so let Django allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextmanager
def chromium() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(
            f"Chromium is not at {CHROMIUM}: bin/test installs Debian's package "
            "(apt-get install chromium), or set HERALD_CHROMIUM."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as ``artifacts/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_.-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
