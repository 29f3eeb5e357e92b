"""The baselines the app's views are measured against (goals 4 and 5)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines

from django_image_sync.models import UploadedImage
from django_image_sync.storage import image_storage

PLAIN_PAGE = engines["django"].from_string(
    "<!doctype html><html><head><title>Plain</title></head><body>\n"
    "{% for image in images %}"
    '<img src="{{ image.resized.url }}" width="{{ image.resized_width }}"'
    ' height="{{ image.resized_height }}" alt="{{ image.original_name }}">\n'
    "{% endfor %}</body></html>"
)


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def bare_upload(request: HttpRequest) -> HttpResponse:
    """Save the posted files to the app's storage, nothing else: no checks, no rows."""
    if request.method != "POST":
        return HttpResponse(status=405)
    names = [
        image_storage.save(f"bare/{uuid.uuid4().hex}.jpg", upload)
        for upload in request.FILES.getlist("images")
    ]
    return JsonResponse({"saved": names}, status=201)


def plain_gallery(request: HttpRequest) -> HttpResponse:
    """50 plain ``<img>`` tags from the rows the gallery's first page shows."""
    rows = UploadedImage.objects.filter(owner__isnull=True).order_by("-created", "-id")[:50]
    return HttpResponse(PLAIN_PAGE.render({"images": rows}, request))
