"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright for Python, against a real
``apipod serve`` in front of fake upstreams (core_support.py). No browser is downloaded: Playwright only
drives the system's Chromium. Outside CI a missing Chromium or Playwright skips with the reason; under
``CI=true`` it fails. Every page a test opens is watched: a console error or an uncaught page error fails it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import ADMIN_SECRET, model, plan, unreachable
from tests.integration.http.core_support import Stack, start_stack

CHROMIUM = os.environ.get("APIPOD_TEST_CHROMIUM", "/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
# The README's screenshots are retaken only when asked: a test run leaves the working tree as it found it.
UPDATE_SCREENSHOTS = os.environ.get("APIPOD_UPDATE_SCREENSHOTS") == "1"
SCREENSHOTS = ("sign-in", "overview", "keys", "plans", "providers", "usage", "overview-phone")
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

# What the machine's closed network needs (docs: python-svc machines): no background connections at all.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _extra(oa_url: str, an_url: str) -> dict[str, list[str]]:
    """A second model and a plan with two routes, aliases and a budget, to edit in the plans page; a model
    with (steep) prices, so the usage pages show a cost."""
    return {
        "models": [
            model("gpt-mini", "oa", "gpt-4o-mini-up"),
            model("priced", "oa", "gpt-4o-up", input_price=2500, output_price=10000),
        ],
        "plans": [
            plan("priced-plan", {"priced": 1}),
            plan(
                "team",
                {"gpt": 3, "gpt-mini": 1},
                extra='budgets = [{ window = "day", tokens = 1000000, requests = 5000 },'
                ' { window = "month", cost = 25.0 }]\n'
                'aliases = [{ name = "fast", routes = [{ model = "gpt-mini", weight = 1 }] }]\n',
            ),
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("console"), extra=_extra)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: docs/images/ with ``APIPOD_UPDATE_SCREENSHOTS=1``, else a temporary
    directory (every page is still captured and checked)."""
    return DOCS_IMAGES if UPDATE_SCREENSHOTS else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped on purpose: Playwright's sync API keeps an event loop running in this thread while it is
    open, and every asyncio test collected after this module would find it and fail."""
    if shutil.which(CHROMIUM) is None:
        unreachable("Chromium", f"{CHROMIUM} is not installed (scripts/dev test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unreachable("Playwright", f"playwright is not installed ({exc})")
        raise
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page, and every console error and uncaught exception it had."""

    def __init__(self, page: Any, images: Path) -> None:
        self.page = page
        self.images = images
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: dialog.accept())  # the console confirms revoke/rotate/delete

    def _console(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.problems.append(f"console {message.type}: {message.text} at {message.location}")

    def sign_in(self, url: str) -> None:
        page = self.page
        page.goto(f"{url}/admin")
        page.get_by_label("Admin secret").fill(ADMIN_SECRET)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview", level=1).wait_for()

    def go(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()
        self.page.get_by_role("heading", name=name, level=1).wait_for()
        self.page.wait_for_load_state("networkidle")

    def shoot(self, name: str) -> None:
        self.images.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.images / f"console-{name}.png"), full_page=False)


def _watched(browser: Any, viewport: dict[str, int], images: Path) -> Iterator[Watched]:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    watched = Watched(context.new_page(), images)
    try:
        yield watched
        assert watched.problems == [], watched.problems
    finally:
        context.close()


@pytest.fixture
def desk(browser: Any, images: Path) -> Iterator[Watched]:
    yield from _watched(browser, DESKTOP, images)


@pytest.fixture
def phone(browser: Any, images: Path) -> Iterator[Watched]:
    yield from _watched(browser, PHONE, images)
