"""What both backends share when they make a plan's outputs: the order (each width
from the next larger, every format from the same pixels, the placeholder from
the smallest) and the options Pillow's encoders are called with."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, TypeVar

from PIL import Image

from .placeholder import make_placeholder
from .types import Encoding, Output, Rendered, RenditionPlan

Pixels = TypeVar("Pixels")


def render_plan(
    plan: RenditionPlan,
    main: Pixels,
    skip: frozenset[str],
    *,
    size_of: Callable[[Pixels], tuple[int, int]],
    resize: Callable[[Pixels, tuple[int, int]], Pixels],
    encode: Callable[[Pixels, Encoding], bytes],
    placeholder: Callable[[Pixels, tuple[int, int], int], bytes],
) -> Rendered:
    """Every output of ``plan`` from ``main`` (the pixels at the main output's size).

    Larger to smaller: a narrower width is resized from the one before it, and
    every format of a width is encoded from the same pixels; outputs whose key
    is in ``skip`` are not encoded (their ``data`` is None). ``placeholder(pixels,
    size, quality)`` gives the blurred WebP bytes, made from the smallest width.
    """
    outputs = []
    level = main
    for planned in plan.outputs(size_of(main)):
        if (planned.width, planned.height) != size_of(level):
            level = resize(level, (planned.width, planned.height))
        data = None if planned.key in skip else encode(level, planned.encoding)
        outputs.append(Output(planned, data))
    preview = ""
    if plan.placeholder:
        smallest = level
        preview = make_placeholder(
            size_of(smallest), lambda size, quality: placeholder(smallest, size, quality)
        )
    return Rendered(tuple(outputs), preview)


def save_options(
    encoding: Encoding, default_quality: int, icc_profile: bytes | None
) -> dict[str, Any]:
    """The keyword arguments of Pillow's ``save`` for ``encoding``."""
    out_format = encoding.format
    options: dict[str, Any] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if out_format in ("JPEG", "WEBP", "AVIF"):
        options["quality"] = encoding.option("quality", default_quality)
    if out_format == "PNG":
        options["optimize"] = False
    if out_format == "WEBP":
        options["method"] = encoding.option("method", 4)
    if out_format == "AVIF":
        options["speed"] = encoding.option("speed", 6)
        # One thread, as the libvips backend: a prefork worker runs one process
        # per core, and more threads per process would compete for the same cores.
        options["max_threads"] = 1
    return options


def pillow_encode(
    im: Image.Image, encoding: Encoding, default_quality: int, icc_profile: bytes | None
) -> bytes:
    """``im`` saved by Pillow as ``encoding`` asks (the profile only if given)."""
    buffer = io.BytesIO()
    im.save(buffer, format=encoding.format, **save_options(encoding, default_quality, icc_profile))
    return buffer.getvalue()


__all__ = ["pillow_encode", "render_plan", "save_options"]
