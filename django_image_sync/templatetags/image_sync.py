"""Template tags: ``{% load image_sync %}``.

Each tag reads only what the row holds (no storage calls per image).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _

from .. import conf, processing
from ..forms import UploadForm
from ..models import Rendition, Status, UploadedImage
from ..wording import format_names

register = template.Library()


@register.simple_tag
def resized_url(image: UploadedImage | None) -> str:
    """URL of the resized image once processed, else an empty string."""
    if image is None:
        return ""
    return image.resized_url or ""


# Extra formats go into <source> elements in this order (the browser takes the
# first it can show): the smallest files first.
SOURCE_ORDER = ("AVIF", "WEBP", "JPEG", "PNG")


@register.simple_tag
def picture(
    image: UploadedImage | None,
    sizes: str = "100vw",
    alt: str | None = None,
    loading: str = "lazy",
) -> SafeString:
    """``<picture>``: a ``<source>`` per extra format (AVIF first), each with a
    ``srcset`` of every width, then the main format's ``<img>``.

    ``sizes`` defaults to ``100vw`` and ``alt`` to the image's name. An image
    not yet done is a box of its final aspect ratio holding its status.
    Reads only the row: no storage call.
    """
    if image is None:
        return SafeString("")
    return _markup(image, sizes=sizes, alt=alt, loading=loading, sources=True)


@register.simple_tag
def image_tag(
    image: UploadedImage | None,
    sizes: str = "100vw",
    alt: str | None = None,
    loading: str = "lazy",
) -> SafeString:
    """The ``<img>`` alone, with the main format's ``srcset`` (see :func:`picture`)."""
    if image is None:
        return SafeString("")
    return _markup(image, sizes=sizes, alt=alt, loading=loading, sources=False)


def _source_rank(name: str) -> int:
    return SOURCE_ORDER.index(name) if name in SOURCE_ORDER else len(SOURCE_ORDER)


def _by_format(outputs: list[Rendition]) -> dict[str, list[Rendition]]:
    grouped: dict[str, list[Rendition]] = {}
    for output in outputs:
        grouped.setdefault(output.format, []).append(output)
    for group in grouped.values():
        group.sort(key=lambda output: output.width)
    return grouped


def _markup(
    image: UploadedImage, *, sizes: str, alt: str | None, loading: str, sources: bool
) -> SafeString:
    """The tags' HTML. Built with ``html.escape`` rather than ``format_html``: a
    gallery of 50 images writes 500 URLs, and Django's lazy-aware escaping took a
    quarter of the page's render time (measured with cProfile)."""
    alt_text = image.original_name if alt is None else alt
    outputs = image.outputs
    if not outputs:
        return _without_outputs(image, alt_text, loading)
    esc = html.escape
    urls = {output.name: output.url for output in outputs}
    by_format = _by_format(outputs)
    main = outputs[0]
    sizes_attr = esc(sizes)

    def srcset(group: list[Rendition]) -> str:
        return esc(", ".join(f"{urls[output.name]} {output.width}w" for output in group))

    style = (
        f' style="background-image: url({esc(image.placeholder)}); background-size: cover"'
        if image.placeholder
        else ""
    )
    img = (
        f'<img class="image-sync-img" src="{esc(urls[main.name])}" '
        f'srcset="{srcset(by_format[main.format])}" sizes="{sizes_attr}" '
        f'width="{main.width}" height="{main.height}" alt="{conditional_escape(alt_text)}" '
        f'loading="{esc(loading)}" decoding="async"{style}>'
    )
    extra = [name for name in sorted(by_format, key=_source_rank) if name != main.format]
    if not sources or not extra:
        return mark_safe(img)  # noqa: S308 - every value above is escaped
    tags = "".join(
        f'<source type="{esc(by_format[name][0].mime_type)}" srcset="{srcset(by_format[name])}" '
        f'sizes="{sizes_attr}">'
        for name in extra
    )
    return mark_safe(f'<picture class="image-sync-picture">{tags}{img}</picture>')  # noqa: S308


def _without_outputs(image: UploadedImage, alt_text: str, loading: str) -> SafeString:
    if image.is_done:  # done before renditions existed: the main output alone
        return format_html(
            '<img class="image-sync-img" src="{}" width="{}" height="{}" alt="{}" '
            'loading="{}" decoding="async">',
            image.resized_url,
            image.resized_width,
            image.resized_height,
            alt_text,
            loading,
        )
    width, height = processing.fit_within(image.width, image.height, conf.resize_spec().box)
    return format_html(
        '<span class="image-sync-placeholder" role="img" aria-label="{}" '
        'style="aspect-ratio: {} / {}; max-width: {}px">{}</span>',
        f"{alt_text}: {image.get_status_display()}",
        width,
        height,
        width,
        image.get_status_display(),
    )


# The gallery's tiles: a grid of 14rem columns at least, in a page at most
# 72rem wide (image_sync.css). Browsers pick the width to download from this.
GALLERY_SIZES = "(min-width: 1152px) 280px, (min-width: 720px) 33vw, (min-width: 480px) 50vw, 100vw"


@register.inclusion_tag("django_image_sync/tags/gallery.html")
def image_gallery(images: Iterable[UploadedImage], sizes: str = GALLERY_SIZES) -> dict[str, Any]:
    """A grid of images, each a :func:`picture` (or its status box until done).

    The links are built here, with the URL patterns reversed once per page
    rather than once per image in the template.
    """
    detail = _url_builder("image_sync:detail")
    poll = _url_builder("image_sync:api-detail")
    tiles = []
    for image in images:
        waiting = image.status in (Status.PENDING, Status.PROCESSING)
        tiles.append(
            {
                "image": image,
                "link": detail(image.pk),
                "poll": poll(image.pk) if waiting else "",
            }
        )
    return {"tiles": tiles, "sizes": sizes}


def _url_builder(name: str) -> Callable[[int], str]:
    """``pk -> reverse(name, args=[pk])``, reversing the pattern only once."""
    marker = URL_MARKER
    pattern = reverse(name, args=[marker])
    head, sep, tail = pattern.rpartition(str(marker))
    if not sep:  # a pattern that does not show the pk plainly: reverse each time
        return lambda pk: reverse(name, args=[pk])
    return lambda pk: f"{head}{pk}{tail}"


@register.inclusion_tag("django_image_sync/tags/upload_form.html", takes_context=True)
def upload_form(context: template.Context, form: UploadForm | None = None) -> dict[str, Any]:
    """The upload form, posting to the app's upload view.

    Works as a plain form; with the app's script it becomes a drop zone with
    previews, checks in the browser, progress and live status. The script
    reads the settings and strings rendered here (``json_script``).
    """
    return {
        "form": form if form is not None else UploadForm(),
        "csrf_token": context.get("csrf_token"),
        "config": upload_config(),
        "config_id": "image-sync-upload-config",
    }


def upload_config() -> dict[str, Any]:
    """What the upload script needs: the server's limits, the URLs, and the
    strings in the active language (the server stays the authority)."""
    formats = [
        {"name": name.upper(), "mime": processing.FORMAT_MIME_TYPES.get(name.upper(), "")}
        for name in conf.get("ALLOWED_FORMATS")
    ]
    return {
        "maxFiles": conf.get("MAX_FILES"),
        "maxBytes": conf.get("MAX_FILE_SIZE"),
        "maxPixels": conf.get("MAX_PIXELS"),
        "formats": formats,
        "api": reverse("image_sync:api-list"),
        "lookup": reverse("image_sync:api-lookup"),
        "apiDetail": reverse("image_sync:api-detail", args=[URL_MARKER]),
        "detail": reverse("image_sync:detail", args=[URL_MARKER]),
        "marker": str(URL_MARKER),
        "strings": upload_strings(),
    }


def upload_strings() -> dict[str, str]:
    """The upload script's words. ``%(name)s`` placeholders are filled in the
    browser; sizes use Django's own translated units."""
    return {
        "intro": _("Drop images anywhere on this page, paste them, or"),
        "choose": _("Choose images"),
        "camera": _("Take a photo"),
        "queue": _("Chosen images"),
        "remove": _("Remove %(name)s"),
        "cancel": _("Cancel %(name)s"),
        "retry": _("Retry %(name)s"),
        "progress": _("Uploading %(name)s"),
        "ready": _("Ready to upload"),
        "checking": _("Checking…"),
        "uploading": _("Uploading… %(percent)s"),
        "duplicate": _("Already uploaded: nothing was sent."),
        "pending": _("Uploaded; waiting to be resized."),
        "processing": _("Uploaded; being resized."),
        "done": _("Done: %(width)s×%(height)s."),  # noqa: RUF001
        "failed": _("Uploaded, but resizing failed: %(error)s"),
        "cancelled": _("Cancelled: not uploaded."),
        "network": _("Not uploaded: the connection failed."),
        "server": _("Not uploaded: the server answered %(status)s."),
        "nothing": _("Choose at least one image first."),
        "too_many": _(
            "%(name)s waits: at most %(count)s files are sent at once. It is ready "
            "as soon as one of them is uploaded or removed."
        ),
        "same": _("%(name)s was not added: it is the same picture as %(other)s."),
        # The server's own words (wording.problem_message), so that a refusal
        # reads the same whichever side makes it.
        "problem": _("%(file)s: %(problem)s"),
        "empty": _("the file is empty"),
        "too_big": _("the file is %(size)s; the limit is %(limit)s"),
        "just_over": _("the file is slightly larger than the limit of %(limit)s"),
        "format": _("its content is not an image; allowed formats are %(allowed)s"),
        "looks_like": _("it looks like %(found)s; allowed formats are %(allowed)s"),
        "pixels": _(
            "the image has %(pixels)s megapixels (%(width)s×%(height)s); "  # noqa: RUF001
            "the limit is %(limit)s megapixels"
        ),
        "allowed": format_names(conf.get("ALLOWED_FORMATS")),
        "summary": _("%(stored)s of %(total)s uploaded."),
        "summary_refused": _("Not uploaded: %(names)s."),
        # Django's own words for filesizeformat's units.
        "byte": ngettext("%(size)d byte", "%(size)d bytes", 1),
        "bytes": ngettext("%(size)d byte", "%(size)d bytes", 2),
        "KB": gettext("%s KB"),
        "MB": gettext("%s MB"),
        "GB": gettext("%s GB"),
    }


# A number no real primary key reaches, replaced by the id in the browser.
URL_MARKER = 987654321


@register.inclusion_tag("django_image_sync/tags/scripts.html")
def image_sync_scripts() -> dict[str, Any]:
    """The app's script, with the words it shows in the active language.

    Put it at the end of a page that uses the app's tags: pending images then
    turn into their pictures without a reload, and times show in the
    visitor's time zone.
    """
    return {
        "strings": {
            **{value: str(label) for value, label in Status.choices},
            "statusOf": _("%(name)s: %(status)s"),
            # The detail page's label of an image's message: why it failed,
            # or what went wrong the last time while it is tried again.
            "errorLabel": _("Error"),
            "lastTryLabel": _("Last try"),
        },
    }
