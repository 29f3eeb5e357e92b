"""The optional libvips processing backend (``IMAGE_SYNC["BACKEND"] = "vips"``).

The same job as :func:`django_image_sync.processing.resize_image`, done by
libvips through pyvips (``pip install django-image-sync[vips]``): the same
output size, orientation, colour modes, ICC rule, flattening and metadata
stripping, so the two backends are interchangeable (AVIF is encoded by
Pillow's libavif on both, see ``_avif_by_pillow``). What differs is the
route: libvips evaluates decode, resize and encode on demand, a strip at a
time, and resamples with SIMD code, which makes it 1.6-1.7 times as fast as
the Pillow backend on large PNGs (``docs/performance.md``).

Like ``processing``, this module is plain Python on bytes and file objects: no
Django, no Celery. Importing it sets two process-wide libvips options meant
for a Celery worker process (see ``docs/performance.md``):

- one libvips worker thread (unless ``VIPS_CONCURRENCY`` is set in the
  environment): a prefork worker runs one process per core, and more threads
  per process would only compete for the same cores;
- no libvips operation cache: a long-running worker resizes each image once,
  and the cache would keep references to images and file data, so memory
  would grow with every image processed.
"""

from __future__ import annotations

import io
import os
from typing import IO, Any

import pyvips
from PIL import Image

from ..placeholder import BLUR_RADIUS
from ..rendering import pillow_encode, render_plan
from ..rules import (
    exif_orientation,
    header_orientation,
    keeps_icc_profile,
    open_image,
    output_mode,
    stored_target,
    to_workable_mode,
)
from ..structure import png_exif_chunks
from ..types import Encoding, Rendered, RenditionPlan, ResizeResult, ResizeSpec

if "VIPS_CONCURRENCY" not in os.environ:
    pyvips.concurrency_set(1)
pyvips.cache_set_max(0)
pyvips.cache_set_max_mem(0)
pyvips.cache_set_max_files(0)

# libvips picks a loader by content and has many (TIFF, SVG, HEIF, PDF, ...).
# Validation admits JPEG and PNG only; nothing else is handed to libvips here
# either. Pillow names the format from the same signatures libvips' JPEG and
# PNG loaders look for.
_INPUT_FORMATS = ("JPEG", "MPO", "PNG")

_FAIL_ON_ERROR = "fail_on=error"


def _cmyk_thumbnail(data: bytes, size: tuple[int, int], target: tuple[int, int]) -> Any:
    """A CMYK JPEG shrunk on load, resized to ``target``, in RGB by Pillow's formula.

    ``thumbnail`` would convert CMYK through an ICC profile (the embedded one
    or libvips' own), and saturated colours would come out visibly different
    from the Pillow backend, which uses R = (255 - C) x (255 - K) / 255. Here
    the image is resized in CMYK and converted that way at the target size,
    where the arithmetic is cheap.
    """
    shrink = min(size[0] / target[0], size[1] / target[1])
    # libvips' own choice in thumbnail: leave at least 2x for the resampler.
    factor = 8 if shrink >= 16 else 4 if shrink >= 8 else 2 if shrink >= 4 else 1
    cmyk = pyvips.Image.new_from_source(
        pyvips.Source.new_from_memory(data), _FAIL_ON_ERROR, shrink=factor, access="sequential"
    )
    cmyk = cmyk.resize(target[0] / cmyk.width, vscale=target[1] / cmyk.height)
    ink = 255 - cmyk.extract_band(0, n=3)
    rgb = (ink * (255 - cmyk.extract_band(3)) / 255).rint().cast("uchar")
    return rgb.copy(interpretation="srgb")


def _mode_of(image: Any) -> str:
    """The Pillow name (L, LA, RGB, RGBA) of an 8-bit libvips image."""
    colour = image.bands - (1 if image.hasalpha() else 0) >= 3
    return ("RGB" if colour else "L") + ("A" if image.hasalpha() else "")


def _to_mode(image: Any, mode: str) -> Any:
    """Bring a thumbnail (8-bit sRGB or B_W, maybe with alpha) to a Pillow mode."""
    want_alpha = mode in ("LA", "RGBA")
    if image.hasalpha() and not want_alpha:
        image = image.extract_band(0, n=image.bands - 1)
    current = _mode_of(image)
    if mode.startswith("RGB") and current.startswith("L"):
        image = image.colourspace("srgb")
    elif mode.startswith("L") and current.startswith("RGB"):
        image = image.colourspace("b-w")
    if want_alpha and not image.hasalpha():
        image = image.bandjoin_const([255])
    return image


def _workable_mode(source: Image.Image) -> str:
    """The mode the Pillow backend works in for this source (L, LA, RGB or RGBA).

    Found by applying the Pillow backend's own rule to a one-pixel image of the
    same mode and transparency, so the two backends cannot drift apart.
    """
    probe = Image.new(source.mode, (1, 1))
    if "transparency" in source.info:
        probe.info["transparency"] = source.info["transparency"]
    return to_workable_mode(probe).mode


def _thumbnail(data: bytes, spec: ResizeSpec) -> tuple[Any, str, bytes | None]:
    """The upright pixels at the main output's size in the Pillow backend's workable
    mode, rendered to memory (so every output reuses them: one decode), with the
    source's Pillow mode and ICC profile."""
    # The header, read by Pillow as in the Pillow backend (no pixel is decoded):
    # the same orientation, mode and profile decide the output of both backends.
    with open_image(io.BytesIO(data), None) as source:
        if source.format not in _INPUT_FORMATS:
            raise ValueError(f"{source.format} is not handed to libvips; only JPEG and PNG are")
        source_mode = source.mode
        orientation = header_orientation(source)
        width, height = source.size
        mode = _workable_mode(source)
        icc_profile = source.info.get("icc_profile")
    # A PNG's eXIf chunk after the image data counts, as in the Pillow backend.
    _, late_exif = png_exif_chunks(data)
    if late_exif is not None:
        orientation = exif_orientation(late_exif)
    target = stored_target((width, height), orientation, spec.box)

    if source_mode == "CMYK":
        image = _cmyk_thumbnail(data, (width, height), target)
    else:
        # Shrink-on-load (JPEG), then a resize to exactly the size fit_within()
        # chose, so both backends agree to the pixel. libvips would turn the
        # image by its own reading of the EXIF orientation; Pillow's reading is
        # used instead (no_rotate), so malformed EXIF is treated the same way.
        image = pyvips.Image.thumbnail_source(
            # Reads ``data`` in place; thumbnail_buffer would copy the file first.
            pyvips.Source.new_from_memory(data),
            target[0],
            height=target[1],
            size="force",
            no_rotate=True,
            # A damaged or cut-off file is an error, not an image with grey
            # rows. thumbnail_source does not hand its own fail_on to the
            # loader (libvips 8.18), so it goes in the loader's options.
            option_string=_FAIL_ON_ERROR,
        )
    return _to_mode(upright(image, orientation), mode), source_mode, icc_profile


def upright(image: Any, orientation: int) -> Any:
    """``image`` (small: at the output's size) turned as EXIF ``orientation`` says."""
    if orientation == 1:
        return image
    # Turning needs random access; the image is small, so render it first.
    image = image.copy_memory()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.autorot()


def _encode(
    image: Any, encoding: Encoding, spec: ResizeSpec, source_mode: str, icc_profile: bytes | None
) -> tuple[bytes, Any]:
    """``image`` encoded as ``encoding`` asks; the pixels encoded are returned too."""
    out_format = encoding.format
    mode = output_mode(_mode_of(image), out_format)
    if image.hasalpha() and not mode.endswith("A"):
        background: list[float] = list(spec.background)
        if image.bands == 2:
            # Same grey as the Pillow backend's flatten onto an L canvas.
            red, green, blue = spec.background
            background = [round(0.299 * red + 0.587 * green + 0.114 * blue)]
        image = image.flatten(background=background)
    image = _to_mode(image, mode)
    out_mode = _mode_of(image)

    keep_icc = bool(icc_profile) and keeps_icc_profile(source_mode, out_mode)
    if keep_icc:
        # The very bytes Pillow read, rather than whatever libvips attached.
        image = image.copy()
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc_profile)
    # keep: nothing but the profile (no EXIF, XMP, IPTC, comments).
    keep = "icc" if keep_icc else "none"
    quality = encoding.option("quality", spec.quality)
    if out_format == "JPEG":
        # Pillow's JPEG defaults: 4:2:0 at every quality (libvips would stop
        # subsampling at Q >= 90), baseline, standard Huffman tables.
        output = image.jpegsave_buffer(Q=quality, keep=keep, subsample_mode="on")
    elif out_format == "PNG":
        output = image.pngsave_buffer(keep=keep, compression=6)
    elif out_format == "WEBP":
        output = image.webpsave_buffer(Q=quality, keep=keep, effort=encoding.option("method", 4))
    elif out_format == "AVIF":
        output = _avif_by_pillow(image, encoding, spec.quality, icc_profile if keep_icc else None)
    else:
        raise ValueError(f"unsupported output format {out_format!r}")
    return output, image


def resized(image: Any, size: tuple[int, int], kernel: str) -> Any:
    """``image`` resized to ``size``; with alpha, premultiplied while it is resampled
    (as ``thumbnail`` and Pillow do), so transparent pixels' colour cannot bleed
    into the edges: without it a striped RGBA image got dark fringes."""
    hscale, vscale = size[0] / image.width, size[1] / image.height
    if not image.hasalpha():
        return image.resize(hscale, vscale=vscale, kernel=kernel)
    resized = image.premultiply().resize(hscale, vscale=vscale, kernel=kernel)
    return resized.unpremultiply().rint().cast("uchar").copy(interpretation=image.interpretation)


def _avif_by_pillow(
    image: Any, encoding: Encoding, default_quality: int, icc_profile: bytes | None
) -> bytes:
    """AVIF through Pillow's libavif, on one thread, from the libvips pixels.

    libvips' heifsave runs libaom on threads of its own: the memory a worker
    process added for the same 24 MP photo ranged from 62 to 93 MB over five
    runs, where Pillow's encoder on one thread added 56 MB every time (and the
    time was the same). A copy of the pixels (6 MB at 1920x1080) is the cost.
    """
    mode = _mode_of(image)
    pixels = Image.frombuffer(
        mode, (image.width, image.height), image.write_to_memory(), "raw", mode, 0, 1
    )
    return pillow_encode(pixels, encoding, default_quality, icc_profile)


def render(fileobj: IO[bytes], plan: RenditionPlan, skip: frozenset[str] = frozenset()) -> Rendered:
    """Same contract as the Pillow backend's ``render``, with libvips.

    The main size is rendered to memory once where more than one output reads
    it; each narrower width is resampled from the next larger one (lanczos3)
    and every format is encoded from it.
    """
    fileobj.seek(0)
    # Kept referenced while libvips reads it (until the last encode): a
    # Source made by new_from_memory does not hold it.
    source = fileobj.read()
    level, source_mode, icc_profile = _thumbnail(source, plan.main)
    # Rebound here, so the decoding pipeline (and the loader's buffers) is
    # freed once its pixels are in memory.
    level = kept(level, plan, skip)
    return render_pixels(level, source_mode, icc_profile, plan, skip)


def kept(level: Any, plan: RenditionPlan, skip: frozenset[str]) -> Any:
    """``level`` rendered to memory where more than one output reads it.

    Read once (the main output alone), the pixels are not: they stream from the
    decoder into the encoder a strip at a time, as in resize_image, which saved
    4-7 ms a photo (docs/performance.md)."""
    if _main_reads(plan, (level.width, level.height), skip) > 1:
        return level.copy_memory()
    return level


def render_pixels(
    level: Any,
    source_mode: str,
    icc_profile: bytes | None,
    plan: RenditionPlan,
    skip: frozenset[str] = frozenset(),
) -> Rendered:
    """Every output of ``plan`` from ``level``, the upright pixels at the main
    output's size in the Pillow backend's workable mode (as ``_thumbnail``
    gives them, then :func:`kept`), with the source's Pillow mode and ICC
    profile."""
    spec = plan.main

    def encode(level: Any, encoding: Encoding) -> bytes:
        return _encode(level, encoding, spec, source_mode, icc_profile)[0]

    def placeholder(smallest: Any, size: tuple[int, int], quality: int) -> bytes:
        small = resized(smallest, size, "linear").gaussblur(BLUR_RADIUS)
        return _encode(small, Encoding("WEBP", (("quality", quality),)), spec, "", None)[0]

    return render_plan(
        plan,
        level,
        skip,
        size_of=lambda image: (image.width, image.height),
        # lanczos3 from the next larger width, rendered to memory: every format reuses it.
        resize=lambda image, size: resized(image, size, "lanczos3").copy_memory(),
        encode=encode,
        placeholder=placeholder,
    )


def _main_reads(plan: RenditionPlan, size: tuple[int, int], skip: frozenset[str]) -> int:
    """How many times :func:`render` reads the pixels at the main size: once per
    output of that size it encodes, once for the next width down, once for a
    placeholder made from them (no narrower width)."""
    outputs = plan.outputs(size)
    encoded = sum(1 for out in outputs if out.level == 0 and out.key not in skip)
    narrower = any(out.level > 0 for out in outputs)
    return encoded + int(narrower) + int(plan.placeholder and not narrower)


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    """Decode, orient, resize to fit ``spec.box``, convert and encode, with libvips.

    Same contract as :func:`django_image_sync.processing.resize_image`.
    Raises :class:`pyvips.Error` for data libvips cannot decode, Pillow's
    errors for a header it cannot read, and ``ValueError`` for anything but a
    JPEG or PNG.
    """
    fileobj.seek(0)
    # Kept referenced until the encode has run: the pipeline reads it lazily,
    # and new_from_memory does not hold it (a freed buffer read as "not a JPEG").
    data = fileobj.read()
    image, source_mode, icc_profile = _thumbnail(data, spec)
    output, encoded = _encode(
        image, RenditionPlan(spec).main_encoding, spec, source_mode, icc_profile
    )
    del data
    return ResizeResult(data=output, width=encoded.width, height=encoded.height, format=spec.format)


__all__ = ["render", "resize_image"]
