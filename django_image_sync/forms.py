"""The upload form: one to ``MAX_FILES`` files, checked through the upload path."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from . import conf, processing, uploads


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes the same field name repeated, one file each."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return []
        return files


class UploadForm(forms.Form):
    """The upload form: field ``images``, one to ``MAX_FILES`` files.

    ``cleaned_data["images"]`` holds :class:`~django_image_sync.uploads.CheckedFile`
    objects, ready for :func:`~django_image_sync.uploads.store_files`.
    """

    images = MultipleFileField(label=_("Images"))
    # The broken rules of a refused submission, each naming its file.
    file_errors: list[uploads.FileError]

    def __init__(self, *args: Any, owner: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whose deduplication scope the files are checked against.
        self.owner = owner
        self.file_errors = []
        accept = ",".join(
            processing.FORMAT_MIME_TYPES.get(f.upper(), f"image/{f.lower()}")
            for f in conf.get("ALLOWED_FORMATS")
        )
        self.fields["images"].widget.attrs.update({"accept": accept, "multiple": True})
        self.fields["images"].help_text = _("Up to %(count)d files, %(size)s each at most.") % {
            "count": conf.get("MAX_FILES"),
            "size": filesizeformat(conf.get("MAX_FILE_SIZE")),
        }

    def error_list(self) -> list[uploads.FileError]:
        """Every error of a bound, invalid form as :class:`~uploads.FileError`."""
        if self.file_errors:
            return list(self.file_errors)
        return [
            uploads.FileError(None, error.code or "invalid", " ".join(error.messages))
            for errors in self.errors.as_data().values()
            for error in errors
        ]

    def clean_images(self) -> list[uploads.CheckedFile]:
        try:
            return uploads.check_files(self.cleaned_data["images"], owner=self.owner)
        except uploads.UploadRejected as rejected:
            self.file_errors = rejected.errors
            raise ValidationError(
                [ValidationError(error.message, code=error.code) for error in rejected.errors]
            ) from None
