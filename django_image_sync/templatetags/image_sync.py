"""Template tags: ``{% load image_sync %}``.

Each tag reads only what the row holds (no storage calls per image).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from ..forms import UploadForm
from ..models import UploadedImage

register = template.Library()


@register.simple_tag
def resized_url(image: UploadedImage | None) -> str:
    """URL of the resized image once processed, else an empty string."""
    if image is None:
        return ""
    return image.resized_url or ""


@register.inclusion_tag("django_image_sync/tags/gallery.html")
def image_gallery(images: Iterable[UploadedImage]) -> dict[str, Any]:
    """A grid of images: resized ones shown, others as a status placeholder."""
    return {"images": images}


@register.inclusion_tag("django_image_sync/tags/upload_form.html", takes_context=True)
def upload_form(context: template.Context, form: UploadForm | None = None) -> dict[str, Any]:
    """The upload form, posting to the app's upload view."""
    return {
        "form": form if form is not None else UploadForm(),
        "csrf_token": context.get("csrf_token"),
    }
