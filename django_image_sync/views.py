"""Thin views over ``services``: HTML pages and a JSON API on the same rules.

Sites customise them by subclassing and overriding the ``get_*`` and
``has_*_permission`` hooks, then routing to their subclass.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import DetailView, ListView

from . import conf, uploads
from .forms import UploadForm
from .models import UploadedImage


def image_data(image: UploadedImage, *, duplicate: bool = False) -> dict[str, Any]:
    """The JSON object of an image. Reads only the row: no storage I/O."""
    return {
        "id": image.pk,
        "status": image.status,
        "duplicate": duplicate,
        "name": image.original_name,
        "md5": image.md5,
        "format": image.format,
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "resized_width": image.resized_width,
        "resized_height": image.resized_height,
        "original_url": image.original.url if image.original else None,
        "resized_url": image.resized_url,
        "error": image.error,
        "created": image.created.isoformat(),
    }


# Errors about the request as a whole rather than about the uploaded files.
NON_FIELD_CODES = frozenset({"auth", "method", "not_found", "bad_request"})


def errors_response(errors: list[uploads.FileError], status: int = 400) -> JsonResponse:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        field = "__all__" if error.code in NON_FIELD_CODES else "images"
        grouped.setdefault(field, []).append(error.as_dict())
    return JsonResponse({"errors": grouped}, status=status)


class ImageSyncMixin:
    """Permission hooks and content negotiation shared by every view."""

    request: HttpRequest
    #: Answer JSON whatever the request accepts.
    json_only = False

    def wants_json(self) -> bool:
        if self.json_only:
            return True
        preferred = self.request.get_preferred_type(["text/html", "application/json"])
        return preferred == "application/json"

    def has_view_permission(self, request: HttpRequest) -> bool:
        """Whether ``request.user`` may list and look at images."""
        return not conf.get("REQUIRE_AUTH") or request.user.is_authenticated

    def has_upload_permission(self, request: HttpRequest) -> bool:
        """Whether ``request.user`` may upload."""
        return not conf.get("REQUIRE_AUTH") or request.user.is_authenticated

    def get_queryset(self) -> QuerySet[UploadedImage]:
        """The images this request may see (see ``uploads.visible_images``)."""
        queryset: QuerySet[UploadedImage] = uploads.visible_images(self.request.user)
        return queryset

    def permission_denied(self, request: HttpRequest) -> HttpResponse:
        anonymous = not request.user.is_authenticated
        if self.wants_json():
            status = 401 if anonymous else 403
            message = _("Log in to continue.") if anonymous else _("Permission denied.")
            response = errors_response([uploads.FileError(None, "auth", message)], status=status)
            if anonymous:
                response["WWW-Authenticate"] = 'Session realm="django-image-sync"'
            return response
        if anonymous:
            return redirect_to_login(request.get_full_path())
        return HttpResponse(_("Permission denied."), status=403, content_type="text/plain")

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = super().http_method_not_allowed(request, *args, **kwargs)  # type: ignore[misc]
        if self.wants_json():
            allow = response["Allow"]
            response = JsonResponse(
                {
                    "errors": {
                        "__all__": [
                            {
                                "file": None,
                                "code": "method",
                                "message": f"{request.method} is not allowed; use {allow}.",
                            }
                        ]
                    }
                },
                status=405,
            )
            response["Allow"] = allow
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        method = (request.method or "").lower()
        if method not in self.http_method_names:  # type: ignore[attr-defined]
            return self.http_method_not_allowed(request, *args, **kwargs)
        allowed = (
            self.has_upload_permission(request)
            if method == "post"
            else self.has_view_permission(request)
        )
        if not allowed:
            return self.permission_denied(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class SafeTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler, but the temporary file's own name is kept short.

    Django names the temporary file after the client's extension, so a
    300-character "extension" made the operating system refuse it (a 500).
    """

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        base, extension = os.path.splitext(file_name)
        super().new_file(field_name, base[:64] + extension[:16], *args, **kwargs)
        self.file.name = file_name  # the client's name, as Django would have kept it
        self.file_name = self.file.name


UNREADABLE_BODY_ERRORS = (
    MultiPartParserError,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)


def _close_partial_uploads(request: HttpRequest) -> None:
    """Close (and so delete) the temporary file of a part the parser gave up on."""
    for handler in request.upload_handlers:
        partial_file = getattr(handler, "file", None)
        if partial_file is not None:
            with contextlib.suppress(Exception):
                partial_file.close()


class UploadMixin(ImageSyncMixin):
    form_class = UploadForm

    @method_decorator(csrf_exempt)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Upload handlers can only be changed before the body is read, and the
        # CSRF check reads it: so swap them here, then run the CSRF check
        # (Django's documented pattern for per-view upload handlers).
        if request.method == "POST":
            request.upload_handlers = [
                SafeTemporaryFileUploadHandler(request)
                if type(handler) is TemporaryFileUploadHandler
                else handler
                for handler in request.upload_handlers
            ]
            try:
                # Read the body now, so an unreadable one gets the app's answer
                # rather than failing inside the CSRF check.
                request.POST  # noqa: B018
                request.FILES  # noqa: B018
            except UNREADABLE_BODY_ERRORS as exc:
                _close_partial_uploads(request)
                self.request = request
                return self.unreadable_upload(exc)
        protected = csrf_protect(super().dispatch)
        response: HttpResponse = protected(request, *args, **kwargs)
        return response

    def get_form(self) -> UploadForm:
        if self.request.method == "POST":
            return self.form_class(self.request.POST, self.request.FILES, owner=self.get_owner())
        return self.form_class()

    def get_owner(self) -> Any:
        """Who owns what this request uploads (None for anonymous uploads)."""
        user = self.request.user
        return user if user.is_authenticated else None

    def unreadable_upload(self, exc: Exception) -> HttpResponse:
        """A cut-off or malformed multipart body, or one past Django's limits."""
        message = f"The upload could not be read: {exc}"
        if self.wants_json():
            return errors_response([uploads.FileError(None, "bad_request", message)])
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")

    def handle_upload(self) -> HttpResponse:
        form = self.get_form()
        if not form.is_valid():
            return self.upload_invalid(form)
        outcomes = uploads.store_files(form.cleaned_data["images"], owner=self.get_owner())
        return self.upload_valid(outcomes)

    def upload_invalid(self, form: UploadForm) -> HttpResponse:
        return errors_response(form.error_list())

    def upload_valid(self, outcomes: list[uploads.UploadOutcome]) -> HttpResponse:
        created = any(not outcome.duplicate for outcome in outcomes)
        return JsonResponse(
            {"images": [image_data(o.image, duplicate=o.duplicate) for o in outcomes]},
            status=201 if created else 200,
        )


class UploadView(UploadMixin, View):
    """GET: the upload page. POST: an upload, answered in HTML or JSON."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_image_sync/upload.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": self.get_form()})

    def post(self, request: HttpRequest) -> HttpResponse:
        return self.handle_upload()

    def upload_invalid(self, form: UploadForm) -> HttpResponse:
        if self.wants_json():
            return super().upload_invalid(form)
        return render(self.request, self.template_name, {"form": form}, status=400)

    def upload_valid(self, outcomes: list[uploads.UploadOutcome]) -> HttpResponse:
        if self.wants_json():
            return super().upload_valid(outcomes)
        new = sum(1 for o in outcomes if not o.duplicate)
        duplicates = len(outcomes) - new
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
        return HttpResponseRedirect(reverse("image_sync:gallery"), status=303)


class GalleryView(ImageSyncMixin, ListView):
    http_method_names = ["get", "head", "options"]
    template_name = "django_image_sync/gallery.html"
    context_object_name = "images"

    def get_paginate_by(self, queryset: Any) -> int:
        return int(conf.get("PAGE_SIZE"))


class ImageDetailView(ImageSyncMixin, DetailView):
    http_method_names = ["get", "head", "options"]
    template_name = "django_image_sync/detail.html"
    context_object_name = "image"


class ApiListView(UploadMixin, View):
    """GET: the visible images, paginated (``?page=N``). POST: an upload."""

    http_method_names = ["get", "post", "head", "options"]
    json_only = True

    def get(self, request: HttpRequest) -> HttpResponse:
        paginator = Paginator(self.get_queryset(), int(conf.get("PAGE_SIZE")))
        try:
            page = paginator.page(request.GET.get("page") or 1)
        except (EmptyPage, PageNotAnInteger):
            return errors_response(
                [uploads.FileError(None, "not_found", _("No such page."))], status=404
            )

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
                "results": [image_data(image) for image in page.object_list],
            }
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        return self.handle_upload()


class ApiDetailView(ImageSyncMixin, View):
    """GET: one image's status and URLs."""

    http_method_names = ["get", "head", "options"]
    json_only = True

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        image = self.get_queryset().filter(pk=pk).first()
        if image is None:
            return errors_response(
                [uploads.FileError(None, "not_found", _("No such image."))], status=404
            )
        return JsonResponse(image_data(image))
