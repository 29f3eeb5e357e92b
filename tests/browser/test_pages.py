"""The pages in a real browser: layout at desktop and phone widths, accessibility
(axe-core), the console, keyboard use, and the plain form without JavaScript.

Images are uploaded through the app (``uploads.upload_images``, or the page's
own form) and resized by the real Celery worker before the pages are opened.
The script's upload flow (drop zone, previews, progress) is tested in
tests/browser/test_upload_flow.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from PIL import Image

from django_image_sync import conf
from django_image_sync.models import Status, UploadedImage
from django_image_sync.uploads import upload_images
from tests.browser.helpers import (
    VIEWPORTS,
    assert_no_horizontal_overflow,
    axe,
    cumulative_layout_shift,
    focus_indicator,
    load_images,
    paused_worker,
    screenshot,
    tab_to,
)
from tests.conftest import CORPUS, wait_for_status
from tests.images import jpeg_bytes, png_bytes, upload
from tests.support.rows import make_rows

VIEWPORT_NAMES = list(VIEWPORTS)
GALLERY = "/images/"
UPLOAD = "/upload-image/"
LOGIN = "/accounts/login/"
# A name with no place to break: it must not widen a phone's page.
LONG_NAME = "harbour-at-dawn-from-the-lighthouse-" + "very-" * 12 + "long.jpg"


def expect(*args: Any, **kwargs: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def store(owner: Any, *files: tuple[bytes, str, str]) -> list[UploadedImage]:
    """Upload files through the app and wait until the worker has resized each."""
    outcomes = [
        outcome
        for data, name, ctype in files  # one at a time: MAX_FILES may be below len(files)
        for outcome in upload_images([upload(data, name, ctype)], owner)
    ]
    done = [wait_for_status(o.image.pk, {Status.DONE, Status.FAILED}) for o in outcomes]
    assert [image.status for image in done] == [Status.DONE] * len(done), [  # type: ignore[attr-defined]
        image.error  # type: ignore[attr-defined]
        for image in done
    ]
    return done  # type: ignore[return-value]


def media_files() -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.fixture
def gallery(alice: Any, celery_worker: Any, clear_cache: None) -> list[UploadedImage]:
    """Three of alice's images, resized: a landscape JPEG, a portrait PNG, a tiny JPEG.

    Camera photos from the sample corpus where it is (the gallery's screenshots
    in docs/ are made from them), generated pictures elsewhere.
    """
    if CORPUS.is_dir():
        with Image.open(CORPUS / "orientation/portrait_1.jpg") as photo:
            portrait = io.BytesIO()
            photo.save(portrait, "PNG")
        return store(
            alice,
            ((CORPUS / "gps/DSCN0010.jpg").read_bytes(), LONG_NAME, "image/jpeg"),
            (portrait.getvalue(), "portrait.png", "image/png"),
            ((CORPUS / "Canon_40D.jpg").read_bytes(), "tiny.jpg", "image/jpeg"),
        )
    return store(
        alice,
        (jpeg_bytes((1200, 900), seed=11), LONG_NAME, "image/jpeg"),
        (png_bytes((360, 480), seed=12), "portrait.png", "image/png"),
        (jpeg_bytes((64, 48), seed=13), "tiny.jpg", "image/jpeg"),
    )


# -- every page, at both widths ------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORT_NAMES)
def test_gallery(make_page: Callable[..., Any], alice: Any, gallery: Any, viewport: str) -> None:
    page = make_page(viewport, user=alice)
    page.goto(GALLERY)
    expect(page.get_by_role("heading", level=1)).to_have_text("Gallery")
    figures = page.locator("figure.image-sync-done")
    expect(figures).to_have_count(3)
    load_images(page)
    # Every tile shows its resized image, named by its alt text.
    for image in gallery:
        img = page.locator(f'figure[data-image-sync-id="{image.pk}"] img')
        expect(img).to_have_attribute("alt", image.original_name)
    assert_no_horizontal_overflow(page)
    axe(page)
    # Images carry their size and a placeholder: nothing moves as they load.
    assert cumulative_layout_shift(page) <= 0.05
    screenshot(page, f"gallery-{viewport}")


@pytest.mark.parametrize("viewport", VIEWPORT_NAMES)
def test_a_small_image_is_not_upscaled_in_its_tile(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, clear_cache: None, viewport: str
) -> None:
    [tiny] = store(alice, (jpeg_bytes((64, 48), seed=21), "tiny.jpg", "image/jpeg"))
    page = make_page(viewport, user=alice)
    page.goto(GALLERY)
    load_images(page)
    figure = page.locator(f'figure[data-image-sync-id="{tiny.pk}"]')
    sizes = figure.locator("img").evaluate(
        """async (img) => {
          // The file's own pixels: a srcset's "w" descriptors scale naturalWidth.
          const probe = new Image();
          probe.src = img.currentSrc;
          await probe.decode();
          return { rendered: img.getBoundingClientRect().width, file: probe.naturalWidth,
                   tile: img.closest("li").getBoundingClientRect().width };
        }"""
    )
    assert sizes["file"] == tiny.resized_width == 64, sizes
    assert sizes["tile"] > sizes["file"], sizes  # room to stretch it, and it is not
    assert sizes["rendered"] <= sizes["file"], sizes


@pytest.mark.parametrize("viewport", VIEWPORT_NAMES)
def test_detail_page(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, clear_cache: None, viewport: str
) -> None:
    [image] = store(alice, (jpeg_bytes((1200, 900), seed=31), LONG_NAME, "image/jpeg"))
    page = make_page(viewport, user=alice)
    page.goto(f"/images/{image.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(LONG_NAME)
    img = page.locator(f'figure[data-image-sync-id="{image.pk}"] img')
    expect(img).to_be_visible()
    load_images(page)
    expect(page.locator('[data-image-sync-field="status"]')).to_have_text("Done")
    assert_no_horizontal_overflow(page)
    axe(page)
    assert cumulative_layout_shift(page) <= 0.05


@pytest.mark.parametrize("viewport", VIEWPORT_NAMES)
def test_upload_page(make_page: Callable[..., Any], alice: Any, viewport: str) -> None:
    page = make_page(viewport, user=alice)
    page.goto(UPLOAD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Upload images")
    expect(page.locator("form.image-sync-upload input[name=images]")).to_have_attribute(
        "type", "file"
    )
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()
    # The app's stylesheet is served and applied (its script too: no console error).
    rules = page.evaluate(
        """() => [...document.styleSheets]
             .filter((sheet) => (sheet.href || "").endsWith("/image_sync.css"))
             .map((sheet) => sheet.cssRules.length)"""
    )
    [count] = rules
    assert count > 0, rules
    assert_no_horizontal_overflow(page)
    axe(page)
    screenshot(page, f"upload-empty-{viewport}")


@pytest.mark.parametrize("viewport", VIEWPORT_NAMES)
def test_login_page(make_page: Callable[..., Any], viewport: str) -> None:
    page = make_page(viewport)
    page.goto(f"{LOGIN}?next={UPLOAD}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")
    assert_no_horizontal_overflow(page)
    axe(page)


def test_the_gallery_pagination_is_a_labelled_navigation(
    make_page: Callable[..., Any], alice: Any, settings: Any
) -> None:
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "PAGE_SIZE": 2}
    make_rows(alice, 3, statuses=("failed",))  # no image files to load
    page = make_page("phone", user=alice)
    page.goto(GALLERY)
    pages = page.locator("nav.image-sync-pages")
    expect(pages).to_be_visible()
    expect(pages.get_by_role("link", name="Next")).to_have_attribute("href", "?page=2")
    assert_no_horizontal_overflow(page)
    axe(page)
    expect(pages).to_have_accessible_name(re.compile(r"\S"))
    # Each navigation landmark has a name of its own (as a screen reader lists them).
    names = [nav.aria_snapshot().splitlines()[0] for nav in page.get_by_role("navigation").all()]
    assert len(names) == 2, names
    assert len(set(names)) == len(names), f"navigation landmarks share a name: {names}"


# -- without JavaScript -----------------------------------------------------------------


def reload_link(page: Any) -> Any:
    """The link that reloads a page waiting for the worker, shown without JavaScript."""
    return page.locator("main").get_by_role("link", name=re.compile("reload", re.IGNORECASE))


def test_without_javascript_the_form_uploads_and_a_reload_shows_the_resized_image(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, clear_cache: None
) -> None:
    page = make_page(user=alice, javascript=False)
    page.goto(UPLOAD)
    page.locator("input[name=images]").set_input_files(
        files=[
            {
                "name": "lighthouse.jpg",
                "mimeType": "image/jpeg",
                "buffer": jpeg_bytes((640, 480), seed=41),
            }
        ]
    )
    with paused_worker(celery_worker):  # the image stays pending while the page is read
        page.get_by_role("button", name="Upload", exact=True).click()
        page.wait_for_url(f"**{GALLERY}")
        expect(page.locator(".image-sync-messages")).to_contain_text("1 image uploaded")
        figure = page.locator("figure[data-image-sync-id]")
        expect(figure).to_have_count(1)
        expect(figure).to_have_class(re.compile(r"image-sync-(pending|processing)"))
        image = UploadedImage.objects.get()
        assert (image.owner, image.original_name) == (alice, "lighthouse.jpg")
        assert figure.get_attribute("data-image-sync-id") == str(image.pk)
        # Nothing polls without JavaScript, and the page does not reload itself
        # (axe meta-refresh): it says so and links to itself.
        expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
        expect(reload_link(page)).to_have_attribute("href", GALLERY)
    wait_for_status(image.pk, {Status.DONE})
    reload_link(page).click()
    img = page.locator(f'figure.image-sync-done[data-image-sync-id="{image.pk}"] img')
    expect(img).to_be_visible()
    expect(img).to_have_attribute("alt", "lighthouse.jpg")
    expect(reload_link(page)).to_have_count(0)
    load_images(page)


@pytest.mark.parametrize("path", [GALLERY, "detail"])
def test_without_javascript_a_page_waiting_for_the_worker_passes_axe(
    make_page: Callable[..., Any], alice: Any, celery_worker: Any, clear_cache: None, path: str
) -> None:
    page = make_page(user=alice, javascript=False)
    with paused_worker(celery_worker):
        [outcome] = upload_images([upload(jpeg_bytes(seed=61), "waiting.jpg")], alice)
        url = f"/images/{outcome.image.pk}/" if path == "detail" else path
        page.goto(url)
        expect(page.locator(".image-sync-pending")).to_have_count(1)
        expect(reload_link(page)).to_have_attribute("href", url)
        assert_no_horizontal_overflow(page)
        axe(page)
    wait_for_status(outcome.image.pk, {Status.DONE})


def test_without_javascript_a_too_large_file_is_refused_next_to_the_field(
    make_page: Callable[..., Any],
    alice: Any,
    allow_console_errors: Callable[[str], None],
    tmp_path: Path,
) -> None:
    # The browser logs the page's 400 answer as a failed resource.
    allow_console_errors(r"status of 400")
    limit = conf.get("MAX_FILE_SIZE")
    photo = jpeg_bytes((64, 48), seed=51)
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(photo + b"\0" * (limit + 1 - len(photo)))
    page = make_page(user=alice, javascript=False)
    page.goto(UPLOAD)
    page.locator("input[name=images]").set_input_files(huge)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Upload", exact=True).click()
    assert answer.value.status == 400
    page.wait_for_load_state()
    assert page.url.endswith(UPLOAD)
    errors = page.locator("form.image-sync-upload .errorlist")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("huge.jpg")
    # Next to the field: right after it, before the button.
    order = page.locator("form.image-sync-upload").evaluate(
        """(form) => [...form.querySelectorAll("input[type=file], .errorlist, button")]
             .map((el) => el.matches(".errorlist") ? "errors" : el.tagName.toLowerCase())"""
    )
    assert order == ["input", "errors", "button"], order
    assert_no_horizontal_overflow(page)
    axe(page)
    assert UploadedImage.objects.count() == 0
    assert media_files() == []


# -- keyboard only ---------------------------------------------------------------------


def test_keyboard_reaches_the_file_input_and_the_upload_button_with_a_visible_focus(
    make_page: Callable[..., Any], alice: Any
) -> None:
    # The plain form, as without JavaScript; the script's own controls are
    # tested with it (tests/browser/test_upload_flow.py).
    page = make_page(user=alice, javascript=False)
    page.goto(UPLOAD)
    for target in (
        page.locator("input[name=images]"),
        page.get_by_role("button", name="Upload", exact=True),
    ):
        tab_to(page, target)
        assert focus_indicator(target), f"{target} shows no focus (outline and box-shadow none)"


def test_keyboard_alone_logs_in_with_a_visible_focus(
    make_page: Callable[..., Any], alice: Any
) -> None:
    page = make_page()
    page.goto(f"{LOGIN}?next={UPLOAD}")
    username = page.get_by_label("Username")
    tab_to(page, username)
    assert focus_indicator(username), "the username field shows no focus"
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    assert focus_indicator(password), "the password field shows no focus"
    page.keyboard.type("pw")
    button = page.get_by_role("button", name="Log in")
    tab_to(page, button)
    assert focus_indicator(button), "the Log in button shows no focus"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{UPLOAD}")
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
