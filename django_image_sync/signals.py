"""Signals a site can connect to. All are sent with ``sender=UploadedImage``."""

from django.dispatch import Signal

# Sent once per file of an accepted upload, after the row is committed.
# Arguments: ``image`` (the UploadedImage), ``duplicate`` (True when the content
# was already stored in the uploader's dedup scope and nothing new was saved).
image_uploaded = Signal()

# Sent by the worker when an image reached ``done``.
# Arguments: ``image`` (the UploadedImage, with ``resized`` set).
image_processed = Signal()

# Sent by the worker when an image was marked ``failed`` for good.
# Arguments: ``image`` (the UploadedImage), ``error`` (the readable message).
image_failed = Signal()
