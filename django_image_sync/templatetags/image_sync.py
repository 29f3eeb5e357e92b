"""Template tags: ``{% load image_sync %}``.

Each tag reads only what the row holds (no storage calls per image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import template
from django.urls import reverse

from ..forms import UploadForm
from ..models import Status, UploadedImage

register = template.Library()


@register.simple_tag
def resized_url(image: UploadedImage | None) -> str:
    """URL of the resized image once processed, else an empty string."""
    if image is None:
        return ""
    return image.resized_url or ""


@register.inclusion_tag("django_image_sync/tags/gallery.html")
def image_gallery(images: Iterable[UploadedImage]) -> dict[str, Any]:
    """A grid of images: resized ones shown, others as a status placeholder.

    The links are built here, with the URL patterns reversed once per page
    rather than once per image in the template.
    """
    detail = _url_builder("image_sync:detail")
    poll = _url_builder("image_sync:api-detail")
    tiles = []
    for image in images:
        src = image.resized_url or ""
        tiles.append(
            {
                "image": image,
                "src": src,
                "link": detail(image.pk),
                "poll": poll(image.pk) if not src and image.status != Status.FAILED else "",
            }
        )
    return {"tiles": tiles}


def _url_builder(name: str) -> Callable[[int], str]:
    """``pk -> reverse(name, args=[pk])``, reversing the pattern only once."""
    marker = 987654321
    pattern = reverse(name, args=[marker])
    head, sep, tail = pattern.rpartition(str(marker))
    if not sep:  # a pattern that does not show the pk plainly: reverse each time
        return lambda pk: reverse(name, args=[pk])
    return lambda pk: f"{head}{pk}{tail}"


@register.inclusion_tag("django_image_sync/tags/upload_form.html", takes_context=True)
def upload_form(context: template.Context, form: UploadForm | None = None) -> dict[str, Any]:
    """The upload form, posting to the app's upload view."""
    return {
        "form": form if form is not None else UploadForm(),
        "csrf_token": context.get("csrf_token"),
    }
