"""What the app's views share: the JSON shape of an image and of errors, the
permission hooks and content negotiation (``ImageSyncMixin``), and the upload
handling (``UploadMixin``: upload handlers, unreadable bodies, CSRF, the form).

The pages and the API (``views``) are built from these; sites subclass either.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from django.contrib.auth.mixins import UserPassesTestMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic.edit import FormMixin

from . import conf, files, uploads
from .forms import UploadForm
from .models import UploadedImage
from .storage import file_url

logger = logging.getLogger("django_image_sync")


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
        "original_url": file_url(str(image.original.name)) if image.original else None,
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
        "error": image.error_text,
        "created": image.created.isoformat(),
    }


# Errors about the request as a whole rather than about the uploaded files.
NON_FIELD_CODES = frozenset({"auth", "method", "not_found", "bad_request", "storage_unavailable"})


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

    #: Seconds a client is asked to wait after the storage failed (``Retry-After``).
    storage_retry_after = 30

    def form_valid(self, form: UploadForm) -> HttpResponse:
        try:
            self.outcomes = uploads.store_files(form.cleaned_data["images"], owner=self.get_owner())
        except files.StorageUnavailable as exc:
            logger.warning("django-image-sync: upload refused, storage unavailable: %s", exc)
            return self.storage_unavailable(form)
        created = any(not outcome.duplicate for outcome in self.outcomes)
        return JsonResponse(
            {"images": [image_json(o.image, duplicate=o.duplicate) for o in self.outcomes]},
            status=201 if created else 200,
        )

    def form_invalid(self, form: UploadForm) -> HttpResponse:
        return errors_response(form.error_list())

    def storage_unavailable_message(self) -> str:
        return _("The images could not be stored just now; nothing was kept. Try again shortly.")

    def storage_unavailable(self, form: UploadForm) -> HttpResponse:
        """503: the storage failed while the files were being stored; nothing
        of the submission is kept, and the client may send it again later."""
        message = self.storage_unavailable_message()
        error = uploads.FileError(None, "storage_unavailable", message)
        response = errors_response([error], status=503)
        response["Retry-After"] = str(self.storage_retry_after)
        return response
