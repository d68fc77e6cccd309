"""Browser tests: Playwright (sync API) driving Debian's Chromium against real server
processes started with --dev.

Every page a test opens collects console errors and uncaught exceptions; a test fails if any
appeared (outside what it explicitly expects, such as refused connections while its server is
down). Screenshots go to test-artifacts/screenshots/ (git-ignored); docs/screenshots/ holds
copies for the README."""
import os
import shutil

import pytest
from playwright.sync_api import expect

from tests.pages.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, Person, Site, start_server
from tests.servers import ROOT

# Assertions wait as long as actions do (each context's default, 15 s), not Playwright's 5 s: on
# a loaded CI machine a join's answer has taken longer than 5 s to reach the page's toast.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def site(engine_uri):
    """One --demo server (development mode plus demo gifts) for a test module."""
    process = start_server(engine_uri, "--demo")
    yield Site(process)
    process.stop()


@pytest.fixture(scope="package")
def browser():
    """Chromium under Playwright's sync API, for this package's tests only. Package-scoped, not
    session: while Playwright runs, its event loop counts as running in this thread, so a
    Tornado test after it in the same test worker could not run its own (pytest-xdist mixes
    packages in a worker); leaving the package stops it."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def people(browser, request):
    """`people(site, name)` opens a new person (`viewport`: a desk's screen, say); at the end, no
    page may have logged an error."""
    opened: list[Person] = []

    def open_person(site: Site, name: str, signed_in: bool = True, viewport: dict | None = None) -> Person:
        person = Person(browser, site.base_url, name, viewport)
        if signed_in:
            person.signed_in(site.sign_in(name))
        opened.append(person)
        return person

    yield open_person
    errors = {p.name: p.errors for p in opened if p.errors}
    for person in opened:
        person.close()
    assert not errors, f"console errors: {errors}"


def pytest_sessionfinish(session, exitstatus):
    """Refresh docs/screenshots/ (the README's pictures) when every browser test passed."""
    docs = os.path.join(ROOT, "docs", "screenshots")
    if exitstatus == 0 and os.path.isdir(SCREENSHOTS) and os.environ.get("UPDATE_SCREENSHOTS"):
        os.makedirs(docs, exist_ok=True)
        for name in os.listdir(SCREENSHOTS):
            shutil.copy(os.path.join(SCREENSHOTS, name), os.path.join(docs, name))
