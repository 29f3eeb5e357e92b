"""Browser tests: Playwright driving Debian's Chromium against a live test site.

The site is pytest-django's ``live_server``: ``tests.settings`` and ``tests.urls``
served from a thread of this process, on the session's test database
(transactional tests, so the server, the test and the Celery worker see each
other's rows), with the app's static files and the media files served as well.
The real ``celery_worker`` of ``tests/conftest.py`` resizes what is uploaded.

Fixtures:

- ``browser``: one headless Chromium for every browser test (package scope),
  ``/usr/bin/chromium`` and never a downloaded one. Skipped when Playwright or
  Chromium is missing, a failure when ``IMAGE_SYNC_REQUIRE_SERVICES=1`` (CI).
- ``live_site``: the live server's base URL (pages are opened with paths).
- ``make_page(viewport="desktop" | "phone", *, user=None, javascript=True,
  **context_options)``: a page in a fresh context, signed in as ``user``; every
  context is closed after the test.
- ``page``: ``make_page()``: desktop, JavaScript on, anonymous.
- ``console``: the console errors and page errors of every page the test made;
  any of them fails the test at teardown, except those matching a pattern given
  to ``allow_console_errors(pattern)`` (a regular expression, searched).

Every test in this folder is marked ``browser`` and ``django_db(transaction=True)``.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import helpers
from tests.conftest import REPO, service_unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

HERE = Path(__file__).resolve().parent
# The test site has no registration/login.html of its own (nor does the app), so
# /accounts/login/ falls back to the example project's page, in the app's style.
EXAMPLE_TEMPLATES = REPO / "example_project" / "templates"
# Seconds one browser test (setup, call and teardown) may take before it fails:
# ``page.evaluate`` of a promise that never settles has no timeout of its own.
TEST_TIMEOUT = int(os.environ.get("IMAGE_SYNC_BROWSER_TEST_TIMEOUT", "180"))


def is_browser_test(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark every test of this folder ``browser`` (before ``-m`` selects) and
    ``django_db(transaction=True)``."""
    if is_browser_test(item):
        item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last (after pytest-django's ordering).

    Last, because they start the session's Celery worker (``celery_worker``), which
    then takes every task queued by a later test, and some tests count what they
    leave in the queue (tests/test_bad_input.py).
    """
    browser_items = [item for item in items if is_browser_test(item)]
    if browser_items:
        chosen = set(browser_items)
        items[:] = [item for item in items if item not in chosen] + browser_items


class BrowserTestTimeout(Exception):
    pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a browser test that hangs, rather than the CI job, with every thread's stack."""
    guard = (
        item.get_closest_marker("browser") is not None
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not guard:
        return (yield)

    def expire(signum: int, frame: object) -> None:
        faulthandler.dump_traceback(file=sys.stderr)
        raise BrowserTestTimeout(f"{item.nodeid} took more than {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, shared by the browser tests."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        service_unavailable(
            "the browser tests need Playwright for Python (in the test extra: "
            'pip install -e ".[test]")'
        )
        raise AssertionError("unreachable") from None
    if not os.access(helpers.CHROMIUM, os.X_OK):
        service_unavailable(
            f"the browser tests need Debian's Chromium at {helpers.CHROMIUM} "
            "(apt-get install chromium; scripts/test does it when run as root)"
        )
    # Playwright's sync API keeps an asyncio loop running in this thread, which
    # Django takes for an async context and refuses the ORM in; there is none.
    # Only while the browser runs: the rest of the suite keeps Django's check.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    try:
        try:
            chromium = manager.chromium.launch(
                executable_path=helpers.CHROMIUM, args=helpers.CHROMIUM_ARGS, headless=True
            )
        except Error as exc:
            service_unavailable(f"Chromium at {helpers.CHROMIUM} did not start: {exc}")
            raise
        yield chromium
        chromium.close()
    finally:
        manager.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def live_site(live_server: Any, settings: Any) -> str:
    """The base URL of the live test site."""
    engines = []
    for engine in settings.TEMPLATES:
        engine = {**engine, "OPTIONS": {**engine.get("OPTIONS", {})}}
        if engine.get("APP_DIRS") and "loaders" not in engine["OPTIONS"]:
            # The app's and the site's templates first; the example's login page last.
            engine["APP_DIRS"] = False
            engine["OPTIONS"]["loaders"] = [
                ("django.template.loaders.filesystem.Loader", list(engine.get("DIRS", []))),
                "django.template.loaders.app_directories.Loader",
                ("django.template.loaders.filesystem.Loader", [str(EXAMPLE_TEMPLATES)]),
            ]
        engines.append(engine)
    settings.TEMPLATES = engines
    return str(live_server.url)


class Console:
    """Console errors and uncaught page errors of the pages a test opened."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def watch(self, context: BrowserContext) -> None:
        context.on("page", self.watch_page)
        for page in context.pages:
            self.watch_page(page)

    def watch_page(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url") or page.url
                self.errors.append(f"console error: {message.text} [{where}]")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error} [{page.url}]"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def allow_console_errors(console: Console) -> Callable[[str], None]:
    """``allow_console_errors(r"status of 400")``: console errors matching this
    regular expression do not fail the test (e.g. a page answered 400 on purpose)."""
    return console.allow


@pytest.fixture
def make_page(browser: Browser, live_site: str, console: Console) -> Iterator[Callable[..., Page]]:
    """``make_page(viewport="desktop", *, user=None, javascript=True, **context_options)``."""
    contexts: list[BrowserContext] = []

    def make(
        viewport: str = "desktop",
        *,
        user: Any = None,
        javascript: bool = True,
        **options: Any,
    ) -> Page:
        context = helpers.new_context(
            browser, viewport, javascript=javascript, base_url=live_site, **options
        )
        contexts.append(context)
        context.set_default_timeout(15_000)
        console.watch(context)
        if user is not None:
            helpers.log_in(context, user, live_site)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    unexpected = console.unexpected()
    if unexpected:
        pytest.fail(
            "the browser reported errors:\n" + "\n".join(f"- {e}" for e in unexpected),
            pytrace=False,
        )


@pytest.fixture
def page(make_page: Callable[..., Page]) -> Page:
    """A desktop page, JavaScript on, nobody signed in."""
    return make_page()
