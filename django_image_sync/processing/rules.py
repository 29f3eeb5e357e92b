"""The rules both backends share: orientation, fitting, colour modes, alpha and ICC profiles,
and the size a JPEG is decoded at."""

from __future__ import annotations

import dataclasses
import warnings
from typing import IO, Any

from PIL import Image, ImageMath
from PIL.ImageFile import ImageFile

from . import costs

EXIF_ORIENTATION = 0x0112


# Orientations whose transform swaps width and height.
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def header_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) read from the header, without decoding pixels.

    ``getexif()`` would make Pillow decode a whole PNG to look for a late eXIf
    chunk (and break a later ``verify()``), so only the EXIF block found while
    opening is read. Malformed EXIF, common in camera files, counts as upright.
    """
    raw = im.info.get("exif")
    return exif_orientation(raw) if raw else 1


def exif_orientation(raw: bytes) -> int:
    """The orientation (1-8) in a raw EXIF block; upright if it cannot be read."""
    try:
        exif = Image.Exif()
        exif.load(raw)
        value = exif.get(EXIF_ORIENTATION, 1)
    except Exception:
        return 1
    return orientation_value(value)


def decoded_orientation(im: Image.Image) -> int:
    """The orientation of a decoded image, wherever its EXIF was; upright if unreadable."""
    try:
        with warnings.catch_warnings():
            # Only in a worker process, once the pixels are decoded.
            warnings.simplefilter("ignore", UserWarning)
            return orientation_value(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def open_image(fileobj: IO[bytes], formats: list[str] | None) -> ImageFile:
    """``Image.open``, tolerant of Pillow's "Corrupt EXIF data" warning.

    The warning only arrives as an exception where warnings are errors; the
    file is then opened again with Pillow's user warnings silenced, on this
    rare path only (``catch_warnings`` is process-wide).
    """
    start = fileobj.tell()
    try:
        return Image.open(fileobj, formats=formats)
    except UserWarning:
        fileobj.seek(start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return Image.open(fileobj, formats=formats)


def orientation_value(value: Any) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def fit_within(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The size that fits ``width x height`` inside ``box``, keeping the aspect ratio.

    Never upscales. Each side is at least one pixel.
    """
    box_w, box_h = box
    if width <= box_w and height <= box_h:
        return width, height
    scale = min(box_w / width, box_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def sixteen_bit_samples(im: ImageFile) -> bool:
    """Whether an opened (not yet loaded) PNG stores 16-bit samples."""
    return any(";16" in str(getattr(tile, "args", "")) for tile in im.tile)


def to_workable_mode(im: Image.Image, *, sixteen_bit: bool = False) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB or RGBA without losing transparency.

    Transparency is what a browser shows: an alpha channel, a palette's alpha,
    or a PNG tRNS colour key at any bit depth (``tests/test_colour_modes.py``
    checks every kind against the colours a browser composites).
    """
    mode = im.mode
    key = im.info.get("transparency")
    if key is not None and (mode in ("1", "I") or mode.startswith("I;16")):
        # A grey colour key on 1- or 16-bit samples: Pillow's conversions drop
        # it, so the alpha channel is made here from the samples themselves.
        return _keyed_grey(im, key)
    if mode == "RGB" and isinstance(key, tuple) and (sixteen_bit or max(key) > 255):
        # A 16-bit RGB image comes out of Pillow's decoder with 8-bit samples
        # (the high bytes) but its tRNS key in 16 bits: compare like with like.
        # A pixel differing from the key only in a low byte counts as the key.
        # (``sixteen_bit`` from the header: a key like (0, 0, 100) is 16-bit too.)
        im.info["transparency"] = tuple(value >> 8 for value in key)
    if mode in ("L", "RGB") and "transparency" in im.info:
        # A single transparent colour (PNG tRNS) becomes a real alpha channel.
        return im.convert("RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit and float greyscale: scale to 8 bits rather than clip.
        if mode != "I":
            im = im.convert("I") if mode.startswith("I;16") else im
        if im.mode == "F":
            return im.convert("L")
        return im.point(lambda value: value * (1 / 256)).convert("L")
    if mode == "1":
        return im.convert("L")
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("PA", "La", "RGBa"):
        return im.convert("RGBA")
    if mode == "CMYK":
        return im.convert("RGB")
    if "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def _keyed_grey(im: Image.Image, key: Any) -> Image.Image:
    """An LA image from a 1-bit or 16-bit grey image with a tRNS key ``key``."""
    del im.info["transparency"]
    grey = to_workable_mode(im)
    if not isinstance(key, int):
        return grey
    if im.mode == "1":
        # 8-bit grey holds 0 and 255 for the PNG's 0 and 1: a lookup table will do.
        alpha = grey.point(lambda value: 0 if value == key * 255 else 255)
    else:
        # 16-bit samples: compared as 32-bit integers (see costs.pillow_memory).
        samples = im if im.mode == "I" else im.convert("I")
        matches = ImageMath.lambda_eval(lambda args: (args["v"] != key) * 255, v=samples)
        alpha = matches.convert("L")
    grey_alpha = grey.convert("LA")
    grey_alpha.putalpha(alpha)
    return grey_alpha


def flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite an image with alpha onto an opaque background."""
    if im.mode not in ("LA", "RGBA"):
        return im
    base_mode = "L" if im.mode == "LA" else "RGB"
    colour: Any = background
    if base_mode == "L":
        colour = round(0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2])
    canvas = Image.new(base_mode, im.size, colour)
    canvas.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return canvas


# Output formats without an alpha channel (flattened onto the background), and
# those whose encoders take no greyscale (given the same grey as RGB).
FORMATS_WITHOUT_ALPHA = frozenset({"JPEG"})
FORMATS_WITHOUT_GREY = frozenset({"AVIF", "WEBP"})


def output_mode(mode: str, out_format: str) -> str:
    """The mode a workable image (L, LA, RGB, RGBA) is encoded in as ``out_format``.

    Both backends follow it: alpha is flattened for formats without it, grey
    goes as RGB to encoders without grey; anything else is kept as it is.
    """
    if out_format in FORMATS_WITHOUT_ALPHA:
        mode = mode.removesuffix("A")
    if out_format in FORMATS_WITHOUT_GREY and mode.startswith("L"):
        mode = "RGB" + mode[1:]
    return mode


def keeps_icc_profile(source_mode: str, output_mode: str) -> bool:
    """Whether an output keeps the source's ICC profile: only where the colour
    space is unchanged (RGB-like in and out, or grey in and out), so colours
    stay right. Both processing backends follow this rule."""
    return (source_mode in ("RGB", "RGBA", "P") and output_mode in ("RGB", "RGBA")) or (
        source_mode in ("L", "LA") and output_mode in ("L", "LA")
    )


def _scaled(size: tuple[int, int], numerator: int, denominator: int) -> tuple[int, int]:
    return (-(-size[0] * numerator // denominator), -(-size[1] * numerator // denominator))


# The scales Pillow's JPEG decoder can ask libjpeg(-turbo) for, smallest first, as
# (N, denominator): Pillow sets scale_num = 1 and scale_denom = denominator, and
# libjpeg decodes at the smallest N/8 >= 1/denominator (its inverse DCT scales by
# N/8). 5/8 to 7/8 would need another scale_num, which Pillow does not set.
JPEG_SCALES = ((1, 8), (2, 4), (3, 3), (4, 2), (8, 1))


def stored_target(size: tuple[int, int], orientation: int, box: tuple[int, int]) -> tuple[int, int]:
    """The output's size before it is turned upright: :func:`fit_within` of the
    upright picture, in the orientation the pixels of ``size`` are stored in."""
    turned = orientation in TRANSPOSING_ORIENTATIONS
    width, height = fit_within(*((size[1], size[0]) if turned else size), box)
    return (height, width) if turned else (width, height)


def jpeg_decode_scale(
    size: tuple[int, int], target: tuple[int, int]
) -> tuple[tuple[int, int], int]:
    """The smallest size a JPEG of ``size`` decodes at that still covers ``target``
    (both in the stored orientation), and the decoder's scale denominator for it.

    libjpeg rounds a scaled size up (``ceil(width * N / 8)``); so does this.
    A 4032x3024 photo into 1440x1080 decodes at 3/8 (1512x1134), a 4608x1976
    panorama into 1920x823 at 1/2, a 2560x1600 photo into 1728x1080 at full size.
    """
    for numerator, denominator in JPEG_SCALES:
        scaled = _scaled(size, numerator, 8)
        if scaled[0] >= target[0] and scaled[1] >= target[1]:
            return scaled, denominator
    return size, 1


def with_jpeg_decode_size(
    layout: costs.SourceLayout, target: tuple[int, int]
) -> costs.SourceLayout:
    """``layout`` with the size the Pillow backend decodes that JPEG at
    (:func:`jpeg_decode_scale`; ``target`` is in the stored orientation)."""
    return dataclasses.replace(layout, decoded_size=jpeg_decode_scale(layout.size, target)[0])


def decodes_reduced(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether a JPEG of ``size`` decodes smaller than stored for ``target`` (in the
    stored orientation): whether a scale of 1/2 or less still covers it."""
    return jpeg_decode_scale(size, target)[0] != size
