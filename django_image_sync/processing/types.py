"""The pipeline's value types: what validation learns, what a resize is asked for and gives."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from PIL import (
    Image,
    WebPImagePlugin,  # noqa: F401 - registers the WEBP MIME type
)

# Bumped whenever a change here alters the bytes of a resized image, so cached
# results of the old pipeline are not reused.
PIPELINE_VERSION = 2

SPEC_KEY_LENGTH = 12

FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

# Pillow's own names for them: preinit() registers JPEG and PNG, and importing
# the WebP plugin registers WEBP (whether or not this Pillow can write it).
Image.preinit()
FORMAT_MIME_TYPES = {name: Image.MIME[name] for name in FORMAT_EXTENSIONS}


class ImageProblem(Exception):
    """An image broke one of the rules. ``code`` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """What validation learnt about an accepted image."""

    format: str
    width: int  # as displayed, after the EXIF orientation is applied
    height: int
    frames: int
    size: int  # bytes
    # What resizing it costs a worker (see django_image_sync.costs): the peak
    # memory the backend it was checked for needs, and the JPEG's scans.
    decode_memory: int = 0
    scans: int = 1

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class JpegLayout:
    """What a walk over a JPEG's markers learnt (see :func:`check_jpeg_structure`)."""

    scans: int
    progressive: bool
    # (horizontal, vertical) sampling factors of the frame's components.
    sampling: tuple[tuple[int, int], ...]

    @property
    def buffered(self) -> bool:
        """Whether libjpeg keeps the whole image's coefficients to decode it."""
        return self.progressive or self.scans > 1


@dataclass(frozen=True)
class ResizeSpec:
    """Everything that decides the bytes of a resized image."""

    box: tuple[int, int]
    format: str = "JPEG"
    quality: int = 85
    background: tuple[int, int, int] = (255, 255, 255)
    # Which backend makes the bytes: "pillow", "vips" or a module's dotted
    # path (see processing.backends.resizer_for).
    backend: str = "pillow"

    @property
    def key(self) -> str:
        """A short stable fingerprint, part of cache keys and stored names."""
        raw = (
            f"v{PIPELINE_VERSION}:{self.box[0]}x{self.box[1]}:{self.format}:"
            f"q{self.quality}:bg{self.background[0]},{self.background[1]},{self.background[2]}"
        )
        if self.backend != "pillow":
            # Appended only for other backends, so the names stored by the
            # Pillow pipeline before backends existed stay valid.
            raw += f":{self.backend}"
        return hashlib.sha256(raw.encode()).hexdigest()[:SPEC_KEY_LENGTH]

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class ResizeResult:
    data: bytes
    width: int
    height: int
    format: str
