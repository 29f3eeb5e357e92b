"""Helpers for the browser tests: contexts, logging in, and checks run on a page.

Everything here takes Playwright objects made by the fixtures of
``tests/browser/conftest.py`` (``browser``, ``make_page``, ``page``). Playwright is
imported lazily so that this module imports without it: the ``browser`` fixture
then skips the tests (or fails them when ``IMAGE_SYNC_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import weakref
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.test import Client

from tests.conftest import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

    from tests.conftest import WorkerProcess

#: Debian's Chromium. Playwright never downloads a browser here.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Keyword arguments of ``Browser.new_context`` for each kind of screen.
VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}

#: Where ``screenshot`` writes: ``IMAGE_SYNC_SCREENSHOTS`` (relative to the repository)
#: or build/screenshots/ (ignored by git).
SCREENSHOTS_ENV = "IMAGE_SYNC_SCREENSHOTS"

# Sums the page's layout shifts (not those right after input) from the first paint on.
LAYOUT_SHIFT_SCRIPT = """
(() => {
  window.__imageSyncLayoutShift = 0;
  const add = (entries) => {
    for (const entry of entries) {
      if (!entry.hadRecentInput) { window.__imageSyncLayoutShift += entry.value; }
    }
  };
  try {
    const observer = new PerformanceObserver((list) => add(list.getEntries()));
    observer.observe({ type: "layout-shift", buffered: true });
    window.__imageSyncLayoutShiftFlush = () => add(observer.takeRecords());
  } catch (error) {
    window.__imageSyncLayoutShiftFlush = null;
  }
})();
"""


# -- contexts and users --------------------------------------------------------------

# Contexts made with JavaScript off (see ``javascript_enabled``).
_SCRIPTLESS: weakref.WeakSet[Any] = weakref.WeakSet()


def new_context(
    browser: Browser,
    viewport: str = "desktop",
    *,
    javascript: bool = True,
    base_url: str | None = None,
    **options: Any,
) -> BrowserContext:
    """A fresh context (cookies, storage) with one of ``VIEWPORTS``, in English
    (``locale="en-US"``) and UTC unless ``options`` say otherwise.

    ``javascript=False`` turns the page's scripts off (the app's no-JS paths).
    Every page of the context records its layout shifts (``cumulative_layout_shift``).
    Prefer the ``make_page`` fixture, which also watches the console and closes it.
    """
    context = browser.new_context(
        **{
            **VIEWPORTS[viewport],
            "locale": "en-US",
            "timezone_id": "UTC",
            **options,
            "java_script_enabled": javascript,
            "base_url": base_url,
        }
    )
    context.add_init_script(LAYOUT_SHIFT_SCRIPT)
    if not javascript:
        _SCRIPTLESS.add(context)
    return context


def javascript_enabled(page: Page) -> bool:
    """Whether the page's context (made by ``new_context``) runs scripts."""
    return page.context not in _SCRIPTLESS


# Timers and animation frames as promise callbacks: with JavaScript off, Chromium
# still runs code evaluated by Playwright and its promise callbacks, but never a
# timer or a frame callback, so axe-core's run would never settle.
_TIMERS_AS_PROMISES = """() => {
  const soon = (fn, ...args) => { Promise.resolve().then(() => fn(...args)); return 0; };
  window.setTimeout = (fn, ms, ...args) => soon(fn, ...args);
  window.requestAnimationFrame = (fn) => soon(fn, performance.now());
  window.requestIdleCallback = (fn) => soon(fn, { didTimeout: false, timeRemaining: () => 50 });
}"""


def prepare_for_scripts(page: Page) -> None:
    """On a page whose context has JavaScript off, make code evaluated by the tests
    that waits on timers work (``page.evaluate`` of a promise that never settles has
    no timeout). The page's own scripts still do not run, and the DOM stays as a
    visitor without JavaScript has it (``<noscript>`` content parsed as elements)."""
    if not javascript_enabled(page):
        page.evaluate(_TIMERS_AS_PROMISES)


def session_cookie(user: Any) -> str:
    """A new session for ``user`` in the database, as the session cookie's value."""
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def log_in(context: BrowserContext, user: Any, base_url: str) -> None:
    """Sign ``user`` in for every page of ``context`` on ``base_url``."""
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_cookie(user), "url": base_url}]
    )


# -- checks -----------------------------------------------------------------------------


def assert_no_horizontal_overflow(page: Page) -> None:
    """The page does not scroll sideways: ``scrollWidth <= innerWidth``.

    The message names the elements that stick out on the right.
    """
    found = page.evaluate(
        """() => {
          const root = document.documentElement;
          const limit = window.innerWidth;
          const wide = [];
          for (const el of document.body.querySelectorAll("*")) {
            const right = el.getBoundingClientRect().right;
            if (right > limit + 0.5) {
              const cls = el.className && typeof el.className === "string"
                ? "." + el.className.trim().split(/\\s+/).join(".") : "";
              wide.push(`${el.tagName.toLowerCase()}${cls} (right edge ${Math.round(right)}px)`);
            }
          }
          return { scrollWidth: root.scrollWidth, innerWidth: limit, wide: wide.slice(0, 8) };
        }"""
    )
    assert found["scrollWidth"] <= found["innerWidth"], (
        f"{page.url} scrolls sideways: scrollWidth {found['scrollWidth']} > innerWidth "
        f"{found['innerWidth']}; wider than the window: {found['wide']}"
    )


@cache
def axe_source() -> str:
    """axe-core's ``axe.min.js``, as bundled in the axe-playwright-python wheel (PyPI)."""
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")


def axe(
    page: Page,
    *,
    impacts: tuple[str, ...] = ("serious", "critical"),
    context: Any = None,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run axe-core on the page; fail on any violation of one of ``impacts``.

    ``context`` and ``options`` are axe.run's (e.g. ``{"rules": {"region":
    {"enabled": False}}}``). Returns every violation, the minor ones included.
    """
    prepare_for_scripts(page)
    page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate(
        """([context, options]) => axe.run(context || document, options)
             .then((results) => results.violations)""",
        [context, {"resultTypes": ["violations"], **(options or {})}],
    )
    bad = [v for v in violations if v.get("impact") in impacts]
    assert not bad, f"axe: {len(bad)} {'/'.join(impacts)} violation(s) on {page.url}\n" + (
        describe_violations(bad)
    )
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:10]:
            target = " ".join(map(str, node.get("target", [])))
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"  * {target}: {summary}")
            lines.append(f"    {node.get('html', '')[:200]}")
    return "\n".join(lines)


def cumulative_layout_shift(page: Page) -> float:
    """The sum of the page's layout shifts so far (CLS as Chromium reports them).

    Needs JavaScript (the observer is added to every page by ``new_context``), and
    a page opened with ``goto``: Chromium reports no shift for ``set_content``.
    """
    assert javascript_enabled(page), "layout shifts are measured only with JavaScript on"
    value = page.evaluate(
        """() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
             if (typeof window.__imageSyncLayoutShiftFlush === "function") {
               window.__imageSyncLayoutShiftFlush();
             }
             resolve(window.__imageSyncLayoutShift);
           })))"""
    )
    assert value is not None, "no layout-shift observer on this page (JavaScript is off?)"
    return float(value)


def load_images(page: Page, timeout: float = 15_000) -> None:
    """Scroll every ``<img>`` into view (lazy ones too) and wait until each has loaded."""
    for img in page.locator("img").all():
        img.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)",
        timeout=timeout,
    )
    page.evaluate("() => window.scrollTo(0, 0)")


def screenshot_dir() -> Path:
    configured = os.environ.get(SCREENSHOTS_ENV)
    directory = REPO / configured if configured else REPO / "build" / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page as ``NAME.png`` in ``screenshot_dir()`` and return its path.

    ``IMAGE_SYNC_SCREENSHOTS=docs/screenshots scripts/test tests/browser`` refreshes
    committed ones. One image pixel per CSS pixel (``scale="css"``), so a phone's
    screenshot is its 390 px width, not twice that: the committed files stay small.
    """
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(
        path=str(path), full_page=full_page, animations="disabled", caret="hide", scale="css"
    )
    return path


def focus_indicator(locator: Locator) -> str | None:
    """How the focused element shows focus: its computed outline or box-shadow, or None."""
    style: dict[str, str] = locator.evaluate(
        """(el) => {
          const cs = getComputedStyle(el);
          return { outlineStyle: cs.outlineStyle, outlineWidth: cs.outlineWidth,
                   outlineColor: cs.outlineColor, boxShadow: cs.boxShadow };
        }"""
    )
    if style["outlineStyle"] != "none" and style["outlineWidth"] not in ("0px", ""):
        return f"outline: {style['outlineStyle']} {style['outlineWidth']} {style['outlineColor']}"
    if style["boxShadow"] not in ("none", ""):
        return f"box-shadow: {style['boxShadow']}"
    return None


def tab_to(page: Page, target: Locator, *, limit: int = 25) -> int:
    """Press Tab until ``target`` has the focus; return how many presses it took.

    Fails with the elements the focus went through if it never gets there.
    """
    path = []
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if target.evaluate("(el) => el === document.activeElement"):
            return presses
        path.append(
            page.evaluate(
                """() => { const el = document.activeElement;
                   return el ? el.outerHTML.slice(0, 80) : null; }"""
            )
        )
    raise AssertionError(
        f"Tab never reached {target} in {limit} presses; focus went through:\n"
        + "\n".join(map(str, path))
    )


# -- the worker ---------------------------------------------------------------------------


def worker_node(worker: WorkerProcess) -> str:
    return f"{worker.name}@{socket.gethostname()}"


@contextlib.contextmanager
def paused_worker(worker: WorkerProcess) -> Iterator[None]:
    """The worker takes no task from this run's queue inside the block; what was
    queued meanwhile is done after it (for looking at a page while an image is
    surely still pending). If the block fails, what it queued is dropped instead,
    so that no task writes files after the test has ended."""
    from tests.celery_app import app

    node = worker_node(worker)
    replies = app.control.cancel_consumer(worker.queue, destination=[node], reply=True, timeout=10)
    assert replies, f"worker {node} did not answer cancel_consumer"
    try:
        yield
    except BaseException:
        app.control.purge()  # the app's queues: this run's only
        raise
    finally:
        replies = app.control.add_consumer(worker.queue, destination=[node], reply=True, timeout=10)
        assert replies, f"worker {node} did not answer add_consumer"
