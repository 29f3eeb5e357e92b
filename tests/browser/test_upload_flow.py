"""The upload page with its script, as a person uses it: drop, preview, checks
in the browser, the SHA-256 lookup, progress, cancel, retry, live status.

A real Celery worker resizes what is uploaded; the page is never reloaded
while it follows its files (a marker set on ``window`` survives to the end).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_image_sync.models import UploadedImage
from django_image_sync.uploads import upload_images
from tests.browser.helpers import (
    assert_no_horizontal_overflow,
    axe,
    cumulative_layout_shift,
    focus_indicator,
    screenshot,
    tab_to,
)
from tests.conftest import CORPUS
from tests.images import jpeg_bytes, png_bytes, upload

UPLOAD = "/upload-image/"
API_LIST = re.compile(r"/api/images/$")
LOOKUP = re.compile(r"/api/images/lookup/\?sha256=[0-9a-f]{64}$")
ITEMS = ".image-sync-item"
# Long enough to reach the worker and to watch the progress bar move.
SLOW_UPLOAD_BYTES_PER_SECOND = 64 * 1024


def expect(*args: Any, **kwargs: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def payload(data: bytes, name: str, mime: str = "image/jpeg") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


class Requests:
    """The requests a page made, as (method, URL, body size)."""

    def __init__(self, page: Any) -> None:
        self.seen: list[tuple[str, str, int]] = []
        page.on("request", self.record)

    def record(self, request: Any) -> None:
        body = request.post_data_buffer
        self.seen.append((request.method, request.url, len(body) if body else 0))

    def matching(self, method: str, pattern: re.Pattern[str]) -> list[tuple[str, str, int]]:
        return [r for r in self.seen if r[0] == method and pattern.search(r[1])]


def states(page: Any) -> list[str]:
    return page.eval_on_selector_all(ITEMS, "items => items.map(i => i.dataset.state)")


def wait_for_states(page: Any, expected: list[str], timeout: float = 60_000) -> None:
    page.wait_for_function(
        "(expected) => JSON.stringify([...document.querySelectorAll('.image-sync-item')]"
        ".map(i => i.dataset.state)) === JSON.stringify(expected)",
        arg=expected,
        timeout=timeout,
    )


def data_transfer(page: Any, files: list[dict[str, Any]]) -> Any:
    """A ``DataTransfer`` in the page holding ``files``, as a drag or a copy makes."""
    encoded = [
        {"name": f["name"], "type": f["mimeType"], "data": base64.b64encode(f["buffer"]).decode()}
        for f in files
    ]
    return page.evaluate_handle(
        """(files) => {
          const transfer = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], f.name, { type: f.type }));
          }
          return transfer;
        }""",
        encoded,
    )


def drop(page: Any, files: list[dict[str, Any]], target: str = "h1") -> None:
    """Drop ``files`` on an element of the page, as a drag from the desktop does."""
    transfer = data_transfer(page, files)
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(target, event, {"dataTransfer": transfer})


def two_photos() -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """A landscape photo and one stored sideways with "rotate 90" in its EXIF,
    each with its upright size: camera photos from the sample corpus where it
    is (they make the screenshots in docs/), generated ones elsewhere."""
    if CORPUS.is_dir():
        harbour = (CORPUS / "gps/DSCN0010.jpg").read_bytes()
        tower = (CORPUS / "orientation/portrait_6.jpg").read_bytes()
        return [
            (payload(harbour, "harbour.jpg"), (640, 480)),
            (payload(tower, "tower.jpg"), (450, 600)),
        ]
    return [
        (payload(jpeg_bytes((480, 320), seed=401, quality=95), "harbour.jpg"), (480, 320)),
        (payload(jpeg_bytes((480, 320), seed=402, orientation=6), "tower.jpg"), (320, 480)),
    ]


def photo_or(path: Any, seed: int) -> bytes:
    """The corpus photo at ``path`` where the corpus is, else a generated one."""
    return path.read_bytes() if path.is_file() else jpeg_bytes((480, 320), seed=seed, quality=95)


def paste(page: Any, files: list[dict[str, Any]], target: str = "body") -> None:
    """Paste ``files`` into an element of the page, as Ctrl+V of a copied screenshot does."""
    page.evaluate(
        """([transfer, target]) => document.querySelector(target).dispatchEvent(
             new ClipboardEvent("paste",
               { clipboardData: transfer, bubbles: true, cancelable: true }))""",
        [data_transfer(page, files), target],
    )


def fail_once(page: Any, url: Any, answer: Callable[[Any], None], method: str = "") -> list[str]:
    """The first request of ``method`` (any, if empty) to ``url`` gets ``answer(route)``;
    every other one goes to the server. For a network failure or a 5xx, once.
    Returns the URLs answered so (one, once it happened)."""
    answered: list[str] = []

    def handle(route: Any) -> None:
        if not answered and (not method or route.request.method == method):
            answered.append(route.request.url)
            answer(route)
        else:
            route.continue_()

    page.route(url, handle)
    return answered


def mark_window(page: Any) -> None:
    page.evaluate("() => { window.__imageSyncNoReload = true; }")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("() => window.__imageSyncNoReload === true"), "the page was reloaded"


@pytest.fixture
def slow_upload(browser: Any) -> Iterator[Callable[[Any], None]]:
    """``slow_upload(page)``: the page's uploads go at 64 KB/s (Chromium's network
    emulation), so that a progress bar can be watched and cancelled."""

    def slow(page: Any) -> None:
        session = page.context.new_cdp_session(page)
        session.send("Network.enable")
        session.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": SLOW_UPLOAD_BYTES_PER_SECOND,
            },
        )

    return slow


def test_drop_two_photos_see_previews_progress_and_both_done_without_reload(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, slow_upload: Any
) -> None:
    page = make_page(user=alice)
    requests = Requests(page)
    page.goto(UPLOAD)
    mark_window(page)
    (first, first_size), (sideways, sideways_size) = two_photos()
    drop(page, [first, sideways])

    wait_for_states(page, ["ready", "ready"])
    items = page.locator(ITEMS)
    expect(items.nth(0).locator(".image-sync-item-name")).to_have_text("harbour.jpg")
    expect(items.nth(0).locator(".image-sync-item-size")).to_have_text(
        re.compile(r"^\d+\.\d\u00a0KB$")
    )
    # Previews, upright: the sideways photo is shown taller than wide.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-preview')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    sizes = page.eval_on_selector_all(
        ".image-sync-preview", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [list(first_size), list(sideways_size)]
    screenshot(page, "upload-chosen-desktop")
    assert requests.matching("POST", API_LIST) == []

    slow_upload(page)
    page.click(".image-sync-submit")
    # While the bytes go: a progress bar per file, and the button cannot be pressed.
    expect(page.locator(".image-sync-submit")).to_be_disabled()
    bar = items.nth(0).locator("progress.image-sync-progress")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("aria-label", "Uploading harbour.jpg")
    page.wait_for_function(
        "() => { const p = document.querySelector('.image-sync-item progress');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=20_000,
    )
    screenshot(page, "upload-sending-desktop")

    wait_for_states(page, ["done", "done"])
    assert_not_reloaded(page)
    expect(page.locator(".image-sync-submit")).to_be_enabled()
    # Each file went in its own request, after a lookup that found nothing.
    posts = requests.matching("POST", API_LIST)
    assert len(posts) == 2
    assert len(requests.matching("GET", LOOKUP)) == 2
    # Sent side by side: the rows are in whichever order the requests finished.
    rows = UploadedImage.objects.order_by("original_name")
    assert [row.original_name for row in rows] == ["harbour.jpg", "tower.jpg"]
    assert [row.status for row in rows] == ["done", "done"]
    assert [row.size for row in rows] == [len(first["buffer"]), len(sideways["buffer"])]
    # The resized images are in place of the previews, loaded, links to their pages.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-thumb img')]"
        ".every(img => img.classList.contains('image-sync-img') && img.complete"
        " && img.naturalWidth > 0)"
    )
    links = page.eval_on_selector_all(
        ".image-sync-item-name a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert links == [f"/images/{row.pk}/" for row in rows]
    expect(items.nth(1).locator(".image-sync-item-status")).to_have_text(
        f"Done: {rows[1].resized_width}\N{MULTIPLICATION SIGN}{rows[1].resized_height}."
    )
    expect(page.locator(".image-sync-summary")).to_have_text("2 of 2 uploaded.")
    assert cumulative_layout_shift(page) < 0.1
    axe(page)
    screenshot(page, "upload-done-desktop")


def test_a_duplicate_is_caught_before_its_bytes_are_sent(
    make_page: Callable[..., Any], alice: Any
) -> None:
    data = jpeg_bytes((200, 150), seed=403)
    [existing] = upload_images([upload(data, "first-time.jpg")], owner=alice)
    page = make_page(user=alice)
    requests = Requests(page)
    page.goto(UPLOAD)
    page.set_input_files("input[name=images]", [payload(data, "second-time.jpg")])
    wait_for_states(page, ["ready"])
    page.click(".image-sync-submit")

    wait_for_states(page, ["duplicate"])
    expect(page.locator(".image-sync-item-status")).to_have_text(
        "Already uploaded: nothing was sent."
    )
    link = page.locator(".image-sync-item-name a")
    expect(link).to_have_attribute("href", f"/images/{existing.image.pk}/")
    assert len(requests.matching("GET", LOOKUP)) == 1
    assert requests.matching("POST", API_LIST) == []
    assert UploadedImage.objects.count() == 1


def test_two_identical_files_chosen_together_are_sent_once(
    make_page: Callable[..., Any], alice: Any
) -> None:
    data = jpeg_bytes((120, 90), seed=404)
    page = make_page(user=alice)
    page.goto(UPLOAD)
    page.set_input_files(
        "input[name=images]", [payload(data, "a.jpg"), payload(data, "copy of a.jpg")]
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-item')]"
        ".every(i => i.dataset.state !== 'checking')"
    )
    assert sorted(states(page)) == ["ready", "refused"]
    expect(page.locator(".image-sync-item[data-state=refused]")).to_contain_text(
        "it is the same picture as"
    )


def test_a_too_large_and_a_text_file_are_refused_before_sending(
    make_page: Callable[..., Any], alice: Any, settings: Any
) -> None:
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "MAX_FILE_SIZE": 100 * 1024}
    big = jpeg_bytes((1600, 1200), seed=405, quality=100)
    assert len(big) > 100 * 1024
    page = make_page(user=alice)
    requests = Requests(page)
    page.goto(UPLOAD)
    page.set_input_files(
        "input[name=images]",
        [payload(big, "huge.jpg"), payload(b"just some notes\n" * 20, "notes.jpg", "image/jpeg")],
    )
    wait_for_states(page, ["refused", "refused"])
    messages = page.locator(".image-sync-item-status").all_inner_texts()
    size = len(big) / 1024
    # The server's words, sizes as Django's filesizeformat writes them.
    assert messages == [
        f"huge.jpg: the file is {size:.1f}\N{NO-BREAK SPACE}KB; "
        "the limit is 100.0\N{NO-BREAK SPACE}KB",
        "notes.jpg: its content is not an image; allowed formats are JPEG and PNG",
    ]
    page.click(".image-sync-submit")
    expect(page.locator(".image-sync-summary")).to_have_text("Choose at least one image first.")
    assert requests.matching("POST", API_LIST) == []
    assert requests.matching("GET", LOOKUP) == []
    assert UploadedImage.objects.count() == 0
    page.locator(".image-sync-remove").first.click()
    expect(page.locator(ITEMS)).to_have_count(1)


def test_more_files_than_allowed_at_once_wait_their_turn(
    make_page: Callable[..., Any], alice: Any
) -> None:
    page = make_page(user=alice)
    page.goto(UPLOAD)
    page.set_input_files(
        "input[name=images]",
        [payload(b"notes", "first.txt", "text/plain")]
        + [payload(jpeg_bytes((64, 48), seed=410 + i), f"p{i}.jpg") for i in range(3)],
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-item')]"
        ".every(i => i.dataset.state !== 'checking')"
    )
    # A refused file takes no place: the first two images are ready, the third waits.
    assert states(page) == ["refused", "ready", "ready", "over_limit"]
    expect(page.locator(ITEMS).nth(3)).to_contain_text(
        "p2.jpg waits: at most 2 files are sent at once."
    )
    page.get_by_role("button", name="Remove p0.jpg").click()
    wait_for_states(page, ["refused", "ready", "ready"])


def bypass_browser_checks(page: Any) -> None:
    """Serve the page a script whose checks pass everything: a client that does
    not check, such as an old or a hand-made one."""

    def handle(route: Any) -> None:
        response = route.fetch()
        script = response.text()
        marker = "function browserRefusal("
        assert script.count(marker) == 1, "the script's checks are no longer in one function"
        script = script.replace(
            marker, "function browserRefusal() { return null; }\n  function checkedRefusal("
        )
        route.fulfill(response=response, body=script)

    page.route(re.compile(r"/image_sync\.js$"), handle)


def test_the_server_refuses_what_a_client_without_checks_sends(
    make_page: Callable[..., Any], alice: Any, settings: Any, allow_console_errors: Any
) -> None:
    allow_console_errors(r"status of 400")
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "MAX_FILE_SIZE": 100 * 1024}
    big = jpeg_bytes((1600, 1200), seed=406, quality=100)
    page = make_page(user=alice)
    requests = Requests(page)
    bypass_browser_checks(page)
    page.goto(UPLOAD)
    good = jpeg_bytes((96, 64), seed=407)
    page.set_input_files(
        "input[name=images]", [payload(big, "huge.jpg"), payload(b"%PDF-1.4 notes", "notes.jpg")]
    )
    wait_for_states(page, ["ready", "ready"])
    page.click(".image-sync-submit")
    wait_for_states(page, ["rejected", "rejected"], timeout=20_000)
    messages = page.locator(".image-sync-item-status").all_inner_texts()
    assert messages[0].startswith("huge.jpg: ")
    assert "KB" in messages[0] or "MB" in messages[0]
    assert str(len(big)) not in messages[0]  # human units, not a byte count
    assert messages[1].startswith("notes.jpg: ")
    assert "PDF" in messages[1]
    assert len(requests.matching("POST", API_LIST)) == 2
    expect(page.locator(".image-sync-summary")).to_have_text(
        "0 of 2 uploaded. Not uploaded: huge.jpg, notes.jpg."
    )
    assert UploadedImage.objects.count() == 0

    # One good and one bad file: the page says which was stored and which was not.
    page.set_input_files(
        "input[name=images]", [payload(good, "good.jpg"), payload(b"plain text", "bad.jpg")]
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-item')].slice(2)"
        ".every(i => i.dataset.state === 'ready')"
    )
    page.click(".image-sync-submit")
    page.wait_for_function(
        "() => { const s = [...document.querySelectorAll('.image-sync-item')].slice(2)"
        ".map(i => i.dataset.state);"
        " return s[1] === 'rejected' && ['pending', 'processing', 'done'].includes(s[0]); }",
        timeout=20_000,
    )
    expect(page.locator(".image-sync-summary")).to_have_text(
        "1 of 2 uploaded. Not uploaded: bad.jpg."
    )
    assert list(UploadedImage.objects.values_list("original_name", flat=True)) == ["good.jpg"]


def test_cancel_then_retry(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, slow_upload: Any
) -> None:
    page = make_page(user=alice)
    page.goto(UPLOAD)
    data = jpeg_bytes((2400, 1800), seed=408, quality=98)
    assert len(data) > 4 * SLOW_UPLOAD_BYTES_PER_SECOND  # several seconds to send
    page.set_input_files("input[name=images]", [payload(data, "slow.jpg")])
    wait_for_states(page, ["ready"])
    slow_upload(page)
    page.click(".image-sync-submit")
    wait_for_states(page, ["uploading"])
    page.click(".image-sync-cancel")
    wait_for_states(page, ["cancelled"])
    expect(page.locator(".image-sync-item-status")).to_have_text("Cancelled: not uploaded.")
    expect(page.locator(".image-sync-submit")).to_be_enabled()
    page.wait_for_timeout(500)
    assert UploadedImage.objects.count() == 0

    page.context.new_cdp_session(page).send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.click(".image-sync-retry")
    wait_for_states(page, ["done"])
    assert UploadedImage.objects.get().original_name == "slow.jpg"


def test_a_network_failure_offers_a_retry(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, allow_console_errors: Any
) -> None:
    allow_console_errors(r"ERR_CONNECTION_RESET")
    page = make_page(user=alice)
    page.goto(UPLOAD)
    fail_once(page, API_LIST, lambda route: route.abort("connectionreset"), method="POST")
    page.set_input_files("input[name=images]", [payload(jpeg_bytes((96, 64), seed=409), "x.jpg")])
    wait_for_states(page, ["ready"])
    page.click(".image-sync-submit")
    wait_for_states(page, ["network"])
    expect(page.locator(".image-sync-item-status")).to_have_text(
        "Not uploaded: the connection failed."
    )
    assert UploadedImage.objects.count() == 0
    page.click(".image-sync-retry")
    wait_for_states(page, ["done"])
    assert UploadedImage.objects.count() == 1


def test_keyboard_alone_chooses_removes_and_uploads(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any
) -> None:
    page = make_page(user=alice)
    # Listening from the start: Playwright turns the interception of file
    # choosers on asynchronously, and a chooser opened before that is missed.
    choosers: list[Any] = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(UPLOAD)
    choose = page.locator(".image-sync-choose")
    tab_to(page, choose)
    assert focus_indicator(choose), "the Choose button shows no focus"
    page.keyboard.press("Enter")
    for _ in range(50):
        if choosers:
            break
        page.wait_for_timeout(100)
    [chooser] = choosers
    chooser.set_files(
        [
            payload(jpeg_bytes((96, 64), seed=411), "keep.jpg"),
            payload(jpeg_bytes((96, 64), seed=412), "drop.jpg"),
        ]
    )
    wait_for_states(page, ["ready", "ready"])
    remove = page.get_by_role("button", name="Remove drop.jpg")
    tab_to(page, remove)
    assert focus_indicator(remove)
    page.keyboard.press("Enter")
    expect(page.locator(ITEMS)).to_have_count(1)
    # Focus goes to the other file's button, not lost with the removed one.
    expect(page.get_by_role("button", name="Remove keep.jpg")).to_be_focused()
    submit = page.locator(".image-sync-submit")
    tab_to(page, submit)
    page.keyboard.press("Enter")
    # The pressed button keeps the focus while it cannot be pressed again.
    expect(submit).to_be_focused()
    wait_for_states(page, ["done"])
    assert list(UploadedImage.objects.values_list("original_name", flat=True)) == ["keep.jpg"]


def test_phone_width_with_long_names_and_every_state(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, slow_upload: Any
) -> None:
    page = make_page("phone", user=alice)
    page.goto(UPLOAD)
    mark_window(page)
    expect(page.locator(".image-sync-camera")).to_be_visible()  # a touch screen
    long_name = "harbour-at-dawn-from-the-lighthouse-" + "very-" * 12 + "long.jpg"
    page.set_input_files(
        "input[name=images]",
        [
            payload(photo_or(CORPUS / "gps/DSCN0012.jpg", seed=413), long_name),
            payload(b"not a picture at all", "notes.txt", "text/plain"),
        ],
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.image-sync-item')]"
        ".every(i => i.dataset.state !== 'checking')"
    )
    assert states(page) == ["ready", "refused"]
    assert_no_horizontal_overflow(page)
    screenshot(page, "upload-chosen-phone")
    slow_upload(page)
    page.click(".image-sync-submit")
    page.wait_for_function(
        "() => { const p = document.querySelector('.image-sync-item progress');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=20_000,
    )
    assert_no_horizontal_overflow(page)
    screenshot(page, "upload-sending-phone")
    wait_for_states(page, ["done", "refused"])
    assert_not_reloaded(page)
    assert_no_horizontal_overflow(page)
    # Targets of at least 24x24 CSS pixels.
    targets = page.eval_on_selector_all(
        ".image-sync button",
        """els => els.filter((e) => e.offsetParent).map((e) => {
             const r = e.getBoundingClientRect();
             return [e.getAttribute("aria-label") || e.textContent, r.width, r.height];
           })""",
    )
    assert targets
    small = [t for t in targets if t[1] < 24 or t[2] < 24]
    assert small == []
    assert cumulative_layout_shift(page) < 0.1
    axe(page)
    screenshot(page, "upload-done-phone")


def test_in_german_the_page_and_its_refusals_are_german(
    make_page: Callable[..., Any], alice: Any, settings: Any
) -> None:
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "MAX_FILE_SIZE": 100 * 1024}
    page = make_page(user=alice, locale="de-DE")
    page.goto(UPLOAD)
    assert page.evaluate("document.documentElement.lang") == "de"
    expect(page.locator("h1")).to_have_text("Bilder hochladen")
    expect(page.locator(".image-sync-choose")).to_have_text("Bilder auswählen")
    big = jpeg_bytes((1600, 1200), seed=414, quality=100)
    page.set_input_files(
        "input[name=images]", [payload(big, "riesig.jpg"), payload(b"Notizen", "notizen.jpg")]
    )
    wait_for_states(page, ["refused", "refused"])
    too_big, not_an_image = page.locator(".image-sync-item-status").all_inner_texts()
    size = f"{len(big) / 1024:.1f}".replace(".", ",")
    assert too_big.startswith("riesig.jpg: ")
    assert f"{size}\N{NO-BREAK SPACE}KB" in too_big
    assert "100,0\N{NO-BREAK SPACE}KB" in too_big
    assert not_an_image.startswith("notizen.jpg: ")
    assert "JPEG und PNG" in not_an_image
    assert "allowed" not in not_an_image


def test_a_pasted_image_is_added_but_not_text_pasted_into_a_field(
    make_page: Callable[..., Any], alice: Any
) -> None:
    page = make_page(user=alice)
    page.goto(UPLOAD)
    paste(page, [payload(png_bytes((120, 80), seed=415), "image.png", "image/png")])
    wait_for_states(page, ["ready"])
    expect(page.locator(".image-sync-item-name")).to_have_text("image.png")
    # Pasting into a text field elsewhere on the page is left to the field.
    page.evaluate(
        """() => { const input = document.createElement("input");
                   input.id = "search"; document.body.appendChild(input); }"""
    )
    page.focus("#search")
    paste(page, [payload(b"x", "other.png", "image/png")], target="#search")
    expect(page.locator(ITEMS)).to_have_count(1)


def test_cancel_during_the_lookup_then_retry_sends_the_file_once(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any
) -> None:
    page = make_page(user=alice)
    requests = Requests(page)
    held: list[Any] = []

    def hold_first(route: Any) -> None:
        if not held:
            held.append(route)  # answered later, after the retry
        else:
            route.continue_()

    page.route(LOOKUP, hold_first)
    page.goto(UPLOAD)
    page.set_input_files("input[name=images]", [payload(jpeg_bytes((96, 64), seed=416), "a.jpg")])
    wait_for_states(page, ["ready"])
    page.click(".image-sync-submit")
    wait_for_states(page, ["looking"])
    page.click(".image-sync-cancel")
    wait_for_states(page, ["cancelled"])
    # Focus moved from the pressed Cancel to its successor, Retry.
    expect(page.locator(".image-sync-retry")).to_be_focused()
    page.keyboard.press("Enter")
    wait_for_states(page, ["done"])
    held[0].fulfill(status=204, body="")  # the cancelled attempt's answer arrives late
    page.wait_for_timeout(500)
    assert len(requests.matching("POST", API_LIST)) == 1
    assert UploadedImage.objects.count() == 1


def test_a_server_error_while_following_the_status_does_not_stop_it(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, allow_console_errors: Any
) -> None:
    allow_console_errors(r"status of 503")
    page = make_page(user=alice)
    answered = fail_once(
        page,
        re.compile(r"/api/images/\d+/$"),
        lambda route: route.fulfill(status=503, body="restarting"),
    )
    page.goto(UPLOAD)
    page.set_input_files("input[name=images]", [payload(jpeg_bytes((96, 64), seed=417), "b.jpg")])
    wait_for_states(page, ["ready"])
    page.click(".image-sync-submit")
    wait_for_states(page, ["done"])
    assert len(answered) == 1


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_file_sizes_read_as_djangos_filesizeformat(
    make_page: Callable[..., Any], alice: Any, language: str
) -> None:
    from django.template.defaultfilters import filesizeformat
    from django.utils import translation

    sizes = [1, 2, 1023, 1024, 1280, 1_047_552, 1_048_575, 1_048_576, 1_310_720, 5_242_881]
    page = make_page(user=alice, locale=language)
    page.goto(UPLOAD)
    page.set_input_files(
        "input[name=images]", [payload(b"x" * n, f"{n}.txt", "text/plain") for n in sizes]
    )
    shown = page.locator(".image-sync-item-size").all_inner_texts()
    with translation.override(language):
        expected = [str(filesizeformat(n)) for n in sizes]
    assert shown == expected


def test_storage_unavailable_shows_the_servers_words_and_a_retry(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, allow_console_errors: Any
) -> None:
    allow_console_errors(r"status of 503")
    page = make_page(user=alice)
    page.goto(UPLOAD)
    body = {
        "errors": {
            "__all__": [
                {
                    "file": None,
                    "code": "storage_unavailable",
                    "message": "The images could not be stored just now; nothing was kept.",
                    "params": {},
                }
            ]
        }
    }

    fail_once(
        page,
        API_LIST,
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "30"},
            content_type="application/json",
            body=json.dumps(body),
        ),
        method="POST",
    )
    page.set_input_files("input[name=images]", [payload(jpeg_bytes((96, 64), seed=418), "s.jpg")])
    wait_for_states(page, ["ready"])
    page.click(".image-sync-submit")
    wait_for_states(page, ["server"])
    expect(page.locator(".image-sync-item-status")).to_have_text(
        "The images could not be stored just now; nothing was kept."
    )
    page.click(".image-sync-retry")
    wait_for_states(page, ["done"])
    assert UploadedImage.objects.count() == 1
