"""The app's configuration: registers the system checks and connects its own receivers."""

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class ImageSyncConfig(AppConfig):
    name = "django_image_sync"
    label = "django_image_sync"
    verbose_name = _("Image sync")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .models import UploadedImage
        from .receivers import delete_files, dispatch_new_image

        post_save.connect(
            dispatch_new_image, sender=UploadedImage, dispatch_uid="image_sync_dispatch_new"
        )
        post_delete.connect(
            delete_files, sender=UploadedImage, dispatch_uid="image_sync_delete_files"
        )
