"""Browser tests of the staff console: real headless Chromium (Debian's ``chromium``, or
``$CHROMIUM``) driven by Playwright's Python API against Django's live server on the test
database. Screenshots go to ``$CONSOLE_ARTIFACTS`` (default ``test-artifacts/console``)."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", "test-artifacts/console"))
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("No chromium found: `make browser` installs Debian's (or set $CHROMIUM).")
    return path


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium for one test. Playwright's sync API keeps an event loop running in
    this thread while it is open; the ORM calls a test makes between browser steps are plain
    synchronous ones all the same, so Django's async guard is lifted for this test only (never
    for the process: ``check --deploy`` in a subprocess must not inherit it)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def console(browser, live_server, request):
    """``console(user)``: a page signed in to the admin as ``user`` (password of the
    factories), each in its own browser context; ``page.shot(name)`` saves a screenshot."""
    contexts = []

    def open_as(user, *, language: str = "en"):
        context = browser.new_context(
            viewport=VIEWPORT, locale=language, timezone_id=settings.BUSINESS_TIME_ZONE
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "correct-horse-battery")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

        def shot(name: str) -> Path:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            path = ARTIFACTS / f"{request.node.name}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            return path

        page.shot = shot  # type: ignore[attr-defined]  # a test-only extra
        page.base = live_server.url  # type: ignore[attr-defined]
        return page

    yield open_as
    for context in contexts:
        context.close()
