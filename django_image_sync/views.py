"""The pages and the JSON API, on Django's generic views, through the upload path
(their shared parts are in ``mixins``).

Sites customise them by subclassing and overriding the generic views' hooks
(``get_queryset``, ``get_form_kwargs``, ``form_valid``, ``form_invalid``,
``test_func``, ``handle_no_permission``) and the ``has_*_permission`` hooks,
then routing to their subclass.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import DeleteView, DetailView, FormView, ListView
from django.views.generic.detail import SingleObjectMixin
from django.views.generic.edit import ProcessFormView
from django.views.generic.list import MultipleObjectMixin

from . import conf, uploads
from .forms import UploadForm
from .mixins import (  # noqa: F401  (public here too: sites import them from views)
    NON_FIELD_CODES,
    ImageSyncMixin,
    SafeTemporaryFileUploadHandler,
    UploadMixin,
    errors_response,
    image_json,
)
from .models import Status, UploadedImage, scope_for

# States a page shows as "being resized" (its status changes without the user).
WAITING = frozenset({Status.PENDING, Status.PROCESSING})


class UploadView(UploadMixin, FormView):
    """GET: the upload page. POST: an upload, answered in HTML or JSON."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_image_sync/upload.html"

    def form_invalid(self, form: UploadForm) -> HttpResponse:
        if self.wants_json():
            return super().form_invalid(form)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def storage_unavailable(self, form: UploadForm) -> HttpResponse:
        response = super().storage_unavailable(form)
        if self.wants_json():
            return response
        # The page again, with why above the field; the files are to be sent again.
        form.add_error(None, self.storage_unavailable_message())
        page = self.render_to_response(self.get_context_data(form=form), status=503)
        page["Retry-After"] = response["Retry-After"]
        return page

    def form_valid(self, form: UploadForm) -> HttpResponse:
        response = super().form_valid(form)
        if self.wants_json() or response.status_code == 503:
            return response
        new = sum(1 for o in self.outcomes if not o.duplicate)
        duplicates = len(self.outcomes) - new
        if new:
            messages.success(
                self.request,
                ngettext(
                    "%(count)d image uploaded; it is being resized.",
                    "%(count)d images uploaded; they are being resized.",
                    new,
                )
                % {"count": new},
                fail_silently=True,
            )
        if duplicates:
            messages.info(
                self.request,
                ngettext(
                    "%(count)d image was already uploaded.",
                    "%(count)d images were already uploaded.",
                    duplicates,
                )
                % {"count": duplicates},
                fail_silently=True,
            )
        return HttpResponseRedirect(self.get_success_url(), status=303)

    def get_success_url(self) -> str:
        return reverse("image_sync:gallery")


class GalleryView(ImageSyncMixin, ListView):
    http_method_names = ["get", "head", "options"]
    template_name = "django_image_sync/gallery.html"
    context_object_name = "images"

    def get_paginate_by(self, queryset: Any) -> int:
        return int(conf.get("PAGE_SIZE"))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # Without JavaScript nothing polls: the page reloads itself meanwhile.
        context["refresh_while_pending"] = any(
            image.status in WAITING for image in context["object_list"]
        )
        return context


class ImageDetailView(ImageSyncMixin, DetailView):
    http_method_names = ["get", "head", "options"]
    template_name = "django_image_sync/detail.html"
    context_object_name = "image"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["refresh_while_pending"] = self.object.status in WAITING
        context["can_delete"] = self.has_delete_permission(self.request, self.object)
        return context


class ApiListView(UploadMixin, MultipleObjectMixin, ProcessFormView):
    """GET: the visible images, paginated (``?page=N``). POST: an upload."""

    http_method_names = ["get", "post", "head", "options"]
    json_only = True

    def get_paginate_by(self, queryset: Any) -> int:
        return int(conf.get("PAGE_SIZE"))

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        queryset = self.get_queryset()
        try:
            paginator, page, _objects, _paged = self.paginate_queryset(
                queryset, self.get_paginate_by(queryset)
            )
        except Http404:
            return self.not_found(_("No such page."))

        def link(number: int) -> str:
            query = request.GET.copy()
            query["page"] = str(number)
            return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

        return JsonResponse(
            {
                "count": paginator.count,
                "page": page.number,
                "num_pages": paginator.num_pages,
                "next": link(page.next_page_number()) if page.has_next() else None,
                "previous": link(page.previous_page_number()) if page.has_previous() else None,
                "results": [image_json(image) for image in page.object_list],
            }
        )


class ImageDeleteView(ImageSyncMixin, DeleteView):
    """GET: asks to confirm. POST: deletes the image; its files go once the
    deletion commits, unless another row still uses them."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_image_sync/delete.html"
    context_object_name = "image"

    def test_func(self) -> bool:
        # Seeing the image is the first condition; deleting it is checked below.
        return self.has_view_permission(self.request)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.refuse_or(super().get, request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.refuse_or(super().post, request, *args, **kwargs)

    _image: UploadedImage | None = None

    def get_object(self, queryset: QuerySet[UploadedImage] | None = None) -> UploadedImage:
        # Read once a request: the permission check and Django's view use the same row.
        if self._image is None:
            self._image = super().get_object(queryset)
        return self._image

    def refuse_or(self, handler: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """The image's owner goes on; anyone else gets the usual refusal
        (a visitor: the login page)."""
        image = self.get_object()
        if not self.has_delete_permission(request, image):
            return self.handle_no_permission()
        return handler(request, *args, **kwargs)

    def get_success_url(self) -> str:
        return reverse("image_sync:gallery")

    def form_valid(self, form: Any) -> HttpResponse:
        name = str(self.object)
        response = super().form_valid(form)
        messages.success(
            self.request, _("%(name)s was deleted.") % {"name": name}, fail_silently=True
        )
        return response


class ApiDetailView(ImageSyncMixin, SingleObjectMixin, View):
    """GET: one image's status and URLs. DELETE: remove it (its owner only)."""

    http_method_names = ["get", "delete", "head", "options"]
    json_only = True

    def test_func(self) -> bool:
        return self.has_view_permission(self.request)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            image = self.get_object()
        except Http404:
            return self.not_found(_("No such image."))
        return JsonResponse(image_json(image))

    def delete(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            image = self.get_object()
        except Http404:
            return self.not_found(_("No such image."))
        if not request.user.is_authenticated:
            return self.handle_no_permission()  # 401, as every API refusal of a visitor
        if not self.has_delete_permission(request, image):
            message = _("Only the owner may delete this image.")
            return errors_response([uploads.FileError(None, "auth", message)], status=403)
        image.delete()
        return HttpResponse(status=204)


# A SHA-256 digest in hexadecimal.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ApiLookupView(ImageSyncMixin, View):
    """GET ``?sha256=HEX``: the image the uploader already has with this content.

    Lets a page skip sending bytes the server would answer as a duplicate.
    Answers only within the uploader's deduplication scope, which is part of
    what they can already see: 200 with the image (``duplicate: true``), or
    204 (no content) when there is none. Nothing is stored and no signal is sent.
    """

    http_method_names = ["get", "head", "options"]
    json_only = True

    def test_func(self) -> bool:
        return self.has_upload_permission(self.request) and self.has_view_permission(self.request)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        digest = request.GET.get("sha256", "").lower()
        if not SHA256_HEX.fullmatch(digest):
            message = _("sha256 must be 64 hexadecimal digits.")
            return errors_response([uploads.FileError(None, "bad_request", message)])
        owner = request.user if request.user.is_authenticated else None
        image = (
            self.get_queryset()  # the site's visibility hook, as for every other view
            .filter(scope=scope_for(owner), sha256=digest)
            .order_by("pk")
            .first()
        )
        if image is None:
            # Not a 404: "not there yet" is the ordinary answer, and browsers
            # log every 4xx as an error.
            return HttpResponse(status=204)
        return JsonResponse(image_json(image, duplicate=True))
