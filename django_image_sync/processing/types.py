"""The pipeline's value types: what validation learns, what a resize is asked for and gives."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from PIL import (
    AvifImagePlugin,  # noqa: F401 - registers the AVIF MIME type
    Image,
    WebPImagePlugin,  # noqa: F401 - registers the WEBP MIME type
)

# Bumped whenever a change here alters the bytes of a resized image, so cached
# results of the old pipeline are not reused.
PIPELINE_VERSION = 3

SPEC_KEY_LENGTH = 12

# Bumped whenever a change alters the bytes of a rendition (a smaller width or
# an extra format) but not of the main output: part of every rendition's key.
RENDITION_VERSION = 1

FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "AVIF": "avif"}

# Pillow's own names for them: preinit() registers JPEG and PNG, and importing
# the WebP and AVIF plugins registers WEBP and AVIF (whether or not this Pillow
# can write them).
Image.preinit()
FORMAT_MIME_TYPES = {name: Image.MIME[name] for name in FORMAT_EXTENSIONS}


class ImageProblem(Exception):
    """An image broke one of the rules. ``code`` names the rule.

    ``message`` is an English sentence for logs and callers outside Django;
    ``params`` holds the figures it is made from (sizes in bytes, pixel
    counts, format names, all JSON types), so the Django layer can say the
    same in the active language (``wording.problem_message``). Which params
    each code has:

    - ``empty``: none;
    - ``max_file_size``: ``size``, ``limit`` (bytes);
    - ``format``: ``found`` (a format name, or None: not an image), ``allowed`` (list);
    - ``max_pixels``: ``pixels``, ``limit``, and ``width``, ``height``, ``frames``
      where the header could be read (a decompression bomb may give ``pixels`` only);
    - ``max_jpeg_scans``: ``scans``, ``limit``, ``progressive``;
    - ``max_decode_memory``: ``memory``, ``limit`` (bytes), ``width``, ``height``, ``format``;
    - ``corrupt``: ``reason`` (``header``, ``truncated``, ``damaged``,
      ``no_image_data`` or ``bit_depth``), and ``format``, ``bits`` or
      ``detail`` (the decoder's own English words) where known.
    """

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


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
    # Which backend makes the bytes: "pillow", "vips", "auto" or a module's
    # dotted path (see processing.backends.resizer_for).
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


def _short_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:SPEC_KEY_LENGTH]


@dataclass(frozen=True)
class Encoding:
    """An output format and its encoder's options, e.g. ``("AVIF", (("quality", 55), ...))``.

    Options are the encoder's own names: ``quality`` (JPEG, WebP, AVIF),
    ``speed`` (AVIF, 0-10, higher is faster) and ``method`` (WebP, 0-6,
    higher is slower and smaller).
    """

    format: str
    options: tuple[tuple[str, int], ...] = ()

    @property
    def token(self) -> str:
        return self.format + "".join(f":{name}{value}" for name, value in sorted(self.options))

    def option(self, name: str, default: int) -> int:
        return dict(self.options).get(name, default)

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class RenditionPlan:
    """Every output one upload gets: the main output (``main``), a copy at each
    narrower width in ``widths``, each of those also in every ``formats``
    encoding, and a placeholder."""

    main: ResizeSpec
    widths: tuple[int, ...] = ()
    formats: tuple[Encoding, ...] = ()
    placeholder: bool = False

    @property
    def main_encoding(self) -> Encoding:
        options = (("quality", self.main.quality),) if self.main.format != "PNG" else ()
        return Encoding(self.main.format, options)

    @property
    def encodings(self) -> tuple[Encoding, ...]:
        """The main format first, then the extra ones (one of the main format is dropped)."""
        extra = tuple(e for e in self.formats if e.format != self.main.format)
        return (self.main_encoding, *extra)

    @property
    def key(self) -> str:
        """A fingerprint of the whole plan: part of the result cache's key."""
        widths = ",".join(map(str, sorted(set(self.widths), reverse=True)))
        formats = ",".join(e.token for e in self.formats)
        return _short_hash(
            f"r{RENDITION_VERSION}:{self.main.key}:w{widths}:f{formats}:p{int(self.placeholder)}"
        )

    def outputs(self, main_size: tuple[int, int]) -> list[PlannedOutput]:
        """Every output for a main output of ``main_size``, larger to smaller, each
        width's formats together (main format first). Sizes and keys need no pixels."""
        main_width, main_height = main_size
        levels = [(main_width, main_height)] + [
            (width, max(1, round(main_height * width / main_width)))
            for width in sorted(set(self.widths), reverse=True)
            if 0 < width < main_width
        ]
        planned = []
        chain: list[int] = []
        for index, (width, height) in enumerate(levels):
            if index:
                chain.append(width)
            for encoding in self.encodings:
                if not index and encoding.format == self.main.format:
                    key = self.main.key  # today's resized file keeps its name
                else:
                    derived = ">".join(map(str, chain))
                    key = _short_hash(
                        f"r{RENDITION_VERSION}:{self.main.key}:{derived}:{encoding.token}"
                    )
                planned.append(PlannedOutput(encoding, width, height, key, level=index))
        return planned


@dataclass(frozen=True)
class PlannedOutput:
    """One output a plan asks for; ``level`` 0 is the main size, 1 the next width down..."""

    encoding: Encoding
    width: int
    height: int
    key: str
    level: int

    @property
    def format(self) -> str:
        return self.encoding.format


@dataclass(frozen=True)
class Output:
    """One encoded output; ``data`` is None where the caller asked to skip encoding it."""

    planned: PlannedOutput
    data: bytes | None


@dataclass(frozen=True)
class Rendered:
    """What one render of an image gave: its outputs and its placeholder (a ``data:`` URI)."""

    outputs: tuple[Output, ...]
    placeholder: str = ""

    @property
    def main(self) -> Output:
        return self.outputs[0]
