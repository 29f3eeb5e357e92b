"""The Pillow backend: decode (reduced for JPEG), resize, orient, convert and encode.

Where a photo's milliseconds go, and why the steps are in this order, is in
``docs/performance.md`` ("How the pipeline gets its speed"). In short: a JPEG
is decoded at the smallest N/8 scale that still covers the output; a colour
JPEG is kept in YCbCr, its luma resampled at the output's size and its chroma
at half that size, which is all a 4:2:0 JPEG keeps; the picture is turned
upright only once it is small.
"""

from __future__ import annotations

import math
from typing import IO

from PIL import Image, ImageFilter
from PIL.ImageFile import ImageFile

from ..placeholder import BLUR_RADIUS
from ..rendering import pillow_encode, render_plan
from ..rules import (
    decoded_orientation,
    flatten,
    header_orientation,
    jpeg_decode_scale,
    keeps_icc_profile,
    open_image,
    output_mode,
    sixteen_bit_samples,
    stored_target,
    to_workable_mode,
)
from ..types import Encoding, Rendered, RenditionPlan, ResizeResult, ResizeSpec

_T = Image.Transpose
# What a viewer does to show each EXIF orientation upright (EXIF 2.3, tag 0x0112).
TRANSPOSE_FOR = {
    2: _T.FLIP_LEFT_RIGHT,
    3: _T.ROTATE_180,
    4: _T.FLIP_TOP_BOTTOM,
    5: _T.TRANSPOSE,
    6: _T.ROTATE_270,
    7: _T.TRANSVERSE,
    8: _T.ROTATE_90,
}


def _reduced_jpeg_decode(im: ImageFile, target: tuple[int, int], *, ycbcr: bool = False) -> None:
    """Make the JPEG decoder scale the image down while decoding, staying >= ``target``.

    libjpeg(-turbo) scales by N/8 during the inverse DCT; ``draft()`` offers only
    1/2, 1/4 and 1/8. Where 3/8 covers the target and 1/4 does not (a 12 MP or
    24 MP photo into 1920x1080), decoding at 3/8 instead of 1/2 halves the
    pixels left to resample. The scale is set through Pillow's tile and
    decoder settings (:func:`..rules.jpeg_decode_scale` picks it); if they are
    not in the shape expected, ``draft()`` is used as is.

    ``ycbcr``: the decoder hands over its YCbCr samples (``draft("YCbCr")``,
    public), skipping the colour conversion; only for an RGB JPEG.
    """
    tile = im.tile[0] if len(im.tile) == 1 else None
    if tile is None or not hasattr(tile, "_replace") or getattr(im, "decoderconfig", None):
        im.draft(im.mode, target)
        return
    if ycbcr:
        im.draft("YCbCr", None)
        tile = im.tile[0]
    size, denominator = jpeg_decode_scale(im.size, target)
    im.tile = [tile._replace(extents=(0, 0, *size))]
    im._size = size
    # The decoder's scale is 1/denominator, rounded by libjpeg up to N/8.
    im.decoderconfig = (denominator, 0)


def _resize_ycbcr(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A YCbCr image resized for a 4:2:0 encoder: luma at ``size``, chroma at half.

    The luma (what the eye sees as detail) is resampled as an RGB image would
    be (BICUBIC); the two chroma planes only to half the size, then doubled
    pixel for pixel. A 4:2:0 encoder (JPEG's default in Pillow, WebP, AVIF)
    averages each 2x2 block of chroma, which gives back exactly the half-size
    planes: the same output for about half the resampling of three channels.
    """
    if im.size == size:
        return im
    luma = im.getchannel(0).resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    half = ((size[0] + 1) // 2, (size[1] + 1) // 2)
    # Chroma sample i stands for output pixels 2i and 2i + 1. Where a side of
    # the output is odd, the last sample's second pixel lies one output pixel
    # beyond the picture (an encoder repeats the edge there): the box the
    # planes are resampled from reaches that far, so the samples line up.
    # In the coordinates of the image after reduce(2), which halves them.
    box = (im.width * half[0] / size[0], im.height * half[1] / size[1])
    # reduce() by 2 first (a 2x2 average), BICUBIC for the rest, then doubled.
    # The three bands go through together (Pillow resamples each band alike,
    # so the chroma comes out as it would alone); the luma band, resampled at
    # half the size on the way, is then replaced by the full-size luma.
    chroma = _edge_repeated(im.reduce(2), box)
    chroma = chroma.resize(half, Image.Resampling.BICUBIC, box=(0, 0, *box))
    out = chroma.resize((half[0] * 2, half[1] * 2), Image.Resampling.NEAREST)
    if out.size != size:
        out = out.crop((0, 0, *size))
    out.load()
    # In place, one band (as Image.putalpha does): no merge into a new image.
    out.im.putband(luma.im, 0)
    return out


def _edge_repeated(plane: Image.Image, extent: tuple[float, float]) -> Image.Image:
    """``plane`` with its last column and row repeated to cover ``extent``."""
    width = max(plane.width, math.ceil(extent[0]))
    height = max(plane.height, math.ceil(extent[1]))
    if (width, height) == plane.size:
        return plane
    grown = Image.new(plane.mode, (width, height))
    grown.paste(plane, (0, 0))
    last_x, last_y = plane.width - 1, plane.height - 1
    if width > plane.width:
        column = plane.crop((last_x, 0, last_x + 1, plane.height))
        grown.paste(column.resize((width - plane.width, plane.height)), (plane.width, 0))
    if height > plane.height:
        row = grown.crop((0, last_y, width, last_y + 1))
        grown.paste(row.resize((width, height - plane.height)), (0, plane.height))
    return grown


def _decode(fileobj: IO[bytes], spec: ResizeSpec) -> tuple[Image.Image, str, bytes | None]:
    """The upright pixels at the main output's size, in a workable mode (L, LA, RGB,
    RGBA; YCbCr for a colour JPEG made into a JPEG), with the source's mode and
    ICC profile. The one decode of a render."""
    fileobj.seek(0)
    with open_image(fileobj, None) as source:
        source_mode = source.mode
        orientation = header_orientation(source)
        size = source.size
        jpeg = source.format in ("JPEG", "MPO")
        if jpeg:
            _reduced_jpeg_decode(
                source,
                stored_target(size, orientation, spec.box),
                ycbcr=source_mode == "RGB" and spec.format == "JPEG",
            )
        sixteen_bit = sixteen_bit_samples(source)
        source.load()
        if not jpeg:
            # A PNG may carry its eXIf chunk after the pixel data; now it is read.
            orientation = decoded_orientation(source)
        icc_profile = source.info.get("icc_profile")
        # Resized as stored, turned upright once small.
        target = stored_target(size, orientation, spec.box)
        im: Image.Image = source
        if im.mode == "YCbCr":
            im = _resize_ycbcr(im, target)
        else:
            im = to_workable_mode(im, sixteen_bit=sixteen_bit)
            if im.size != target:
                # After the reduced decode the factor left is below 8/3; BICUBIC is
                # within 0.1 dB of LANCZOS there at two thirds of the cost.
                im = im.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
        if orientation in TRANSPOSE_FOR:
            im = im.transpose(TRANSPOSE_FOR[orientation])
    # Metadata travels in ``info``; drop all of it: outputs get only the profile.
    im.info = {}
    return im, source_mode, icc_profile


def _encode(
    im: Image.Image,
    encoding: Encoding,
    spec: ResizeSpec,
    source_mode: str,
    icc_profile: bytes | None,
) -> tuple[bytes, Image.Image]:
    """``im`` encoded as ``encoding`` asks; the pixels encoded are returned too."""
    out_format = encoding.format
    if im.mode == "YCbCr" and out_format != "JPEG":
        im = im.convert("RGB")
    mode = output_mode(im.mode, out_format)
    if mode != im.mode and not mode.endswith("A") and im.mode.endswith("A"):
        im = flatten(im, spec.background)
    if mode != im.mode:
        im = im.convert(mode)
    # YCbCr is RGB in JPEG's own coding: the profile describes the same colours.
    colour_mode = "RGB" if im.mode == "YCbCr" else im.mode
    keep_icc = bool(icc_profile) and keeps_icc_profile(source_mode, colour_mode)
    return pillow_encode(im, encoding, spec.quality, icc_profile if keep_icc else None), im


def render(fileobj: IO[bytes], plan: RenditionPlan, skip: frozenset[str] = frozenset()) -> Rendered:
    """Decode once and make every output of ``plan``, larger to smaller.

    The main output as :func:`resize_image` makes it; each narrower width
    resampled from the next larger one; every format encoded from the same
    pixels. Outputs whose key is in ``skip`` are not encoded (their ``data``
    is None): the caller already has them. The outputs carry no EXIF, XMP or
    comments; an ICC profile is kept only where the colour space is unchanged.
    """
    spec = plan.main
    im, source_mode, icc_profile = _decode(fileobj, spec)
    # The main JPEG is encoded from YCbCr; everything else wants RGB, made once.
    rgb: list[Image.Image] = []

    def as_rgb(level: Image.Image) -> Image.Image:
        if level.mode != "YCbCr":
            return level
        if not rgb:
            rgb.append(level.convert("RGB"))
        return rgb[0]

    def resize(level: Image.Image, size: tuple[int, int]) -> Image.Image:
        # LANCZOS from the next larger width: a factor of 3 at most.
        return as_rgb(level).resize(size, Image.Resampling.LANCZOS)

    def encode(level: Image.Image, encoding: Encoding) -> bytes:
        pixels = level if encoding.format == "JPEG" else as_rgb(level)
        return _encode(pixels, encoding, spec, source_mode, icc_profile)[0]

    def placeholder(smallest: Image.Image, size: tuple[int, int], quality: int) -> bytes:
        small = as_rgb(smallest).resize(size, Image.Resampling.BOX, reducing_gap=2.0)
        small = small.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
        return _encode(small, Encoding("WEBP", (("quality", quality),)), spec, "", None)[0]

    return render_plan(
        plan,
        im,
        skip,
        size_of=lambda level: level.size,
        resize=resize,
        encode=encode,
        placeholder=placeholder,
    )


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    """Decode, resize to fit ``spec.box``, orient, convert and encode: the main output alone.

    The output carries no EXIF, XMP or comments (GPS, camera serials, ...); an
    ICC profile is kept only when the colour space is unchanged, so colours
    stay right.
    """
    im, source_mode, icc_profile = _decode(fileobj, spec)
    data, encoded = _encode(im, RenditionPlan(spec).main_encoding, spec, source_mode, icc_profile)
    return ResizeResult(
        data=data, width=encoded.size[0], height=encoded.size[1], format=spec.format
    )
