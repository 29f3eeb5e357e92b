"""The Pillow backend: decode (reduced for JPEG), orient, resize, convert and encode."""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFilter, ImageOps
from PIL.ImageFile import ImageFile

from ..placeholder import BLUR_RADIUS
from ..rendering import pillow_encode, render_plan
from ..rules import (
    TRANSPOSING_ORIENTATIONS,
    decoded_orientation,
    fit_within,
    flatten,
    header_orientation,
    keeps_icc_profile,
    open_image,
    output_mode,
    sixteen_bit_samples,
    three_eighths_size,
    to_workable_mode,
)
from ..types import Encoding, Rendered, RenditionPlan, ResizeResult, ResizeSpec


def _reduced_jpeg_decode(im: ImageFile, target: tuple[int, int]) -> None:
    """Make the JPEG decoder scale the image down while decoding, staying >= ``target``.

    libjpeg(-turbo) scales by N/8 during the inverse DCT; ``draft()`` offers only
    1/2, 1/4 and 1/8. Where 1/4 would fall below the target but 3/8 covers it
    (a 12 MP or 24 MP photo into 1920x1080), decoding at 3/8 instead of 1/2
    halves the pixels left to resample. That step sets the decoder's scale
    through Pillow's tile and decoder settings; if they are not in the shape
    expected, ``draft()`` is used as is.
    """
    three_eighths = three_eighths_size(im.size, target)
    tile = im.tile[0] if len(im.tile) == 1 else None
    if (
        three_eighths is not None
        and tile is not None
        and hasattr(tile, "_replace")
        and not getattr(im, "decoderconfig", None)
    ):
        im.tile = [tile._replace(extents=(0, 0, *three_eighths))]
        im._size = three_eighths
        # The decoder's scale is 1/denominator, rounded by libjpeg up to N/8: 3/8.
        im.decoderconfig = (3, 0)
        return
    im.draft(im.mode, target)


def _decode(fileobj: IO[bytes], spec: ResizeSpec) -> tuple[Image.Image, str, bytes | None]:
    """The upright pixels at the main output's size, in a workable mode (L, LA, RGB,
    RGBA), with the source's mode and ICC profile. The one decode of a render."""
    fileobj.seek(0)
    with open_image(fileobj, None) as source:
        source_mode = source.mode
        orientation = header_orientation(source)
        width, height = source.size
        upright = (height, width) if orientation in TRANSPOSING_ORIENTATIONS else (width, height)
        target = fit_within(upright[0], upright[1], spec.box)
        if source.format in ("JPEG", "MPO"):
            stored_target = (
                (target[1], target[0]) if orientation in TRANSPOSING_ORIENTATIONS else target
            )
            _reduced_jpeg_decode(source, stored_target)
        sixteen_bit = sixteen_bit_samples(source)
        source.load()
        if source.format not in ("JPEG", "MPO"):
            # A PNG may carry its eXIf chunk after the pixel data; now it is read.
            late = decoded_orientation(source)
            if late != orientation:
                orientation = late
                upright = (height, width) if late in TRANSPOSING_ORIENTATIONS else (width, height)
                target = fit_within(upright[0], upright[1], spec.box)
        icc_profile = source.info.get("icc_profile")
        im: Image.Image = source
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
        im = to_workable_mode(im, sixteen_bit=sixteen_bit)
        if im.size != target:
            # After the reduced decode the factor left is below 8/3; BICUBIC is
            # within 0.1 dB of LANCZOS there at two thirds of the cost.
            im = im.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
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
    mode = output_mode(im.mode, out_format)
    if mode != im.mode and not mode.endswith("A") and im.mode.endswith("A"):
        im = flatten(im, spec.background)
    if mode != im.mode:
        im = im.convert(mode)
    keep_icc = bool(icc_profile) and keeps_icc_profile(source_mode, im.mode)
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

    def resize(level: Image.Image, size: tuple[int, int]) -> Image.Image:
        # LANCZOS from the next larger width: a factor of 3 at most.
        return level.resize(size, Image.Resampling.LANCZOS)

    def encode(level: Image.Image, encoding: Encoding) -> bytes:
        return _encode(level, encoding, spec, source_mode, icc_profile)[0]

    def placeholder(smallest: Image.Image, size: tuple[int, int], quality: int) -> bytes:
        small = smallest.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
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
    """Decode, orient, resize to fit ``spec.box``, convert and encode: the main output alone.

    The output carries no EXIF, XMP or comments (GPS, camera serials, ...); an
    ICC profile is kept only when the colour space is unchanged, so colours
    stay right.
    """
    im, source_mode, icc_profile = _decode(fileobj, spec)
    data, encoded = _encode(im, RenditionPlan(spec).main_encoding, spec, source_mode, icc_profile)
    return ResizeResult(
        data=data, width=encoded.size[0], height=encoded.size[1], format=spec.format
    )
