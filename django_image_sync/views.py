"""The pages and the JSON API, on Django's generic views, through the upload path.

Sites customise them by subclassing and overriding the generic views' hooks
(``get_queryset``, ``get_form_kwargs``, ``form_valid``, ``form_invalid``,
``test_func``, ``handle_no_permission``) and the ``has_*_permission`` hooks,
then routing to their subclass.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import UserPassesTestMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import DeleteView, DetailView, FormView, ListView
from django.views.generic.detail import SingleObjectMixin
from django.views.generic.edit import FormMixin, ProcessFormView
from django.views.generic.list import MultipleObjectMixin

from . import conf, uploads
from .forms import UploadForm
from .models import Status, UploadedImage, scope_for

# States a page shows as "being resized" (its status changes without the user).
WAITING = frozenset({Status.PENDING, Status.PROCESSING})


def image_json(image: UploadedImage, *, duplicate: bool = False) -> dict[str, Any]:
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
        "renditions": [
            {
                "format": output.format,
                "width": output.width,
                "height": output.height,
                "url": output.url,
                "size": output.size,
            }
            for output in image.outputs
        ],
        "placeholder": (image.placeholder or None) if image.is_done else None,
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


class ImageSyncMixin(UserPassesTestMixin):
    """Permission hooks and content negotiation shared by every view.

    Django's ``UserPassesTestMixin``: ``test_func`` asks ``has_upload_permission``
    for a POST and ``has_view_permission`` otherwise, and ``handle_no_permission``
    answers a refusal in JSON or HTML.
    """

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

    def has_delete_permission(self, request: HttpRequest, image: UploadedImage) -> bool:
        """Whether ``request.user`` may delete ``image``: its owner, or a user
        with the model's ``delete`` permission (staff, through the admin's groups)."""
        user = request.user
        if not user.is_authenticated:
            return False
        if image.owner_id is not None and image.owner_id == user.pk:
            return True
        return user.has_perm("django_image_sync.delete_uploadedimage")

    def test_func(self) -> bool:
        if self.request.method == "POST":
            return self.has_upload_permission(self.request)
        return self.has_view_permission(self.request)

    def get_queryset(self) -> QuerySet[UploadedImage]:
        """The images this request may see (see ``uploads.visible_images``)."""
        queryset: QuerySet[UploadedImage] = uploads.visible_images(self.request.user)
        return queryset

    def handle_no_permission(self) -> HttpResponse:  # type: ignore[override]
        request = self.request
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
            message = _("%(method)s is not allowed; use %(allowed)s.") % {
                "method": request.method,
                "allowed": allow,
            }
            response = errors_response([uploads.FileError(None, "method", message)], status=405)
            response["Allow"] = allow
        return response

    def not_found(self, message: str) -> JsonResponse:
        return errors_response([uploads.FileError(None, "not_found", message)], status=404)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # A method the view does not have is a 405 before any permission check.
        if (request.method or "").lower() not in self.http_method_names:  # type: ignore[attr-defined]
            return self.http_method_not_allowed(request, *args, **kwargs)
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[assignment]
        return response


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


class UploadMixin(ImageSyncMixin, FormMixin):
    """The upload: Django's ``FormMixin`` with the app's form, answered in JSON.

    ``form_valid`` stores the checked files (``self.outcomes``) and answers
    201 (something new) or 200 (duplicates only); ``form_invalid`` answers
    400 with every broken rule, each naming its file.
    """

    form_class = UploadForm
    outcomes: list[uploads.UploadOutcome]

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

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["owner"] = self.get_owner()
        return kwargs

    def get_owner(self) -> Any:
        """Who owns what this request uploads (None for anonymous uploads)."""
        user = self.request.user
        return user if user.is_authenticated else None

    def unreadable_upload(self, exc: Exception) -> HttpResponse:
        """A cut-off or malformed multipart body, or one past Django's limits."""
        message = _("The upload could not be read: %(reason)s") % {"reason": exc}
        if self.wants_json():
            return errors_response([uploads.FileError(None, "bad_request", message)])
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")

    def form_valid(self, form: UploadForm) -> HttpResponse:
        self.outcomes = uploads.store_files(form.cleaned_data["images"], owner=self.get_owner())
        created = any(not outcome.duplicate for outcome in self.outcomes)
        return JsonResponse(
            {"images": [image_json(o.image, duplicate=o.duplicate) for o in self.outcomes]},
            status=201 if created else 200,
        )

    def form_invalid(self, form: UploadForm) -> HttpResponse:
        return errors_response(form.error_list())


class UploadView(UploadMixin, FormView):
    """GET: the upload page. POST: an upload, answered in HTML or JSON."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_image_sync/upload.html"

    def form_invalid(self, form: UploadForm) -> HttpResponse:
        if self.wants_json():
            return super().form_invalid(form)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form: UploadForm) -> HttpResponse:
        response = super().form_valid(form)
        if self.wants_json():
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

    def get_object(self, queryset: QuerySet[UploadedImage] | None = None) -> UploadedImage:
        image: UploadedImage = super().get_object(queryset)
        if not self.has_delete_permission(self.request, image):
            raise PermissionDenied
        return image

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
            uploads.visible_images(request.user)
            .filter(scope=scope_for(owner), sha256=digest)
            .order_by("pk")
            .first()
        )
        if image is None:
            # Not a 404: "not there yet" is the ordinary answer, and browsers
            # log every 4xx as an error.
            return HttpResponse(status=204)
        return JsonResponse(image_json(image, duplicate=True))
