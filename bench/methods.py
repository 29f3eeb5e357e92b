"""The resize methods compared: baselines, the app's pipeline, and research variants.

Each method takes a file path and the box to fit, and returns the encoded output
(JPEG, quality 85) with its size. Only what a method needs is imported, inside it,
so a measuring subprocess loads nothing else (peak memory stays honest).

Baselines:
  naive   Pillow as most code writes it: open, resize(LANCZOS) at full resolution, save.
  pyvips  libvips' ``thumbnail`` (shrink-on-load for JPEG) then ``jpegsave``.
  ours    ``django_image_sync.processing.resize_image``, as the worker calls it.
  ours-vips  ``django_image_sync.processing.backends.vips.resize_image``: the app's optional libvips
          backend (``IMAGE_SYNC["BACKEND"] = "vips"``), as the worker calls it.

Variants (``v-*``) try changes to the Pillow pipeline, in this file only, to find
what would make ``ours`` faster without losing quality. They are documented in
``docs/performance.md``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUALITY = 85
WHITE = (255, 255, 255)
BOX_DEFAULT = (1920, 1080)

Output = tuple[bytes, tuple[int, int]]


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    run: Callable[[Path, tuple[int, int], bool], Output]
    kind: str  # "baseline", "ours" or "variant"
    formats: tuple[str, ...] = ("JPEG", "PNG")
    setup: Callable[[], None] | None = None


def fit_within(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """Same rule as the app: keep the aspect ratio, never upscale, round to nearest."""
    width, height = size
    if width <= box[0] and height <= box[1]:
        return width, height
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# -- baselines -----------------------------------------------------------------------


def _flatten(im: Any) -> Any:
    from PIL import Image

    if im.mode not in ("RGBA", "LA"):
        return im.convert("RGB") if im.mode != "RGB" else im
    canvas = Image.new("RGB", im.size, WHITE)
    canvas.paste(im.convert("RGB"), mask=im.getchannel("A"))
    return canvas


def _save(im: Any, lossless: bool, **options: Any) -> bytes:
    """JPEG q85, or, to judge the resampling alone, lossless PNG."""
    buffer = io.BytesIO()
    if lossless:
        im.save(buffer, format="PNG", compress_level=1)
    else:
        im.save(buffer, format="JPEG", quality=QUALITY, **options)
    return buffer.getvalue()


def _orientation(im: Any) -> int:
    return int(im.getexif().get(0x0112, 1) or 1) if im.format == "JPEG" else 1


def naive(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if _orientation(im) != 1:
            im = ImageOps.exif_transpose(im)
        target = fit_within(im.size, box)
        resized = im.resize(target, Image.Resampling.LANCZOS)
    out = _flatten(resized)
    return _save(out, lossless), out.size


def pyvips_setup() -> None:
    import pyvips

    # No operation cache: every repeat must decode and resize again.
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)


def pyvips_thumbnail(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
    import pyvips

    image = pyvips.Image.thumbnail(str(path), box[0], height=box[1])
    if image.hasalpha():
        image = image.flatten(background=list(WHITE))
    data = image.pngsave_buffer(compression=1) if lossless else image.jpegsave_buffer(Q=QUALITY)
    return data, (image.width, image.height)


def ours(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
    from django_image_sync.processing import ResizeSpec, resize_image

    with path.open("rb") as fh:
        spec = ResizeSpec(box=box, format="PNG" if lossless else "JPEG", quality=QUALITY)
        result = resize_image(fh, spec)
    return result.data, (result.width, result.height)


def ours_vips(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
    from django_image_sync.processing import ResizeSpec
    from django_image_sync.processing.backends.vips import resize_image

    with path.open("rb") as fh:
        spec = ResizeSpec(
            box=box, format="PNG" if lossless else "JPEG", quality=QUALITY, backend="vips"
        )
        result = resize_image(fh, spec)
    return result.data, (result.width, result.height)


# -- research variants -------------------------------------------------------------------
#
# The Pillow pipeline with one or more changes. Orientation is ignored here (the
# generated images have none): it costs the same in every variant.

# libjpeg(-turbo) scales while decoding by N/8. Pillow's public ``draft`` asks for
# 1/1, 1/2, 1/4 or 1/8 only; a denominator of 3 makes libjpeg pick 3/8, which
# Pillow's decoder accepts when the tile and size are set to match.
_EIGHTHS = ((1, 8), (2, 4), (3, 3), (4, 2))


def _reduced_jpeg_decode(
    im: Any, target: tuple[int, int], *, eighths: bool, ycbcr: bool, min_ratio: float = 1.0
) -> None:
    """Ask the JPEG decoder for the smallest scale still >= ``min_ratio`` x target.

    ``eighths`` allows 3/8 (private Pillow attributes); ``ycbcr`` keeps the
    decoder's YCbCr output, skipping the colour conversion both ways.
    """
    from PIL import ImageFile

    if ycbcr:
        im.draft("YCbCr", None)  # mode only; size below
        im.decoderconfig = ()
    width, height = im.size
    need = (target[0] * min_ratio, target[1] * min_ratio)
    choices = _EIGHTHS if eighths else ((1, 8), (2, 4), (4, 2))
    scaled = [
        (denominator, (-(-width * numerator // 8), -(-height * numerator // 8)))
        for numerator, denominator in choices
    ]
    fitting = [(d, out) for d, out in scaled if out[0] >= need[0] and out[1] >= need[1]]
    if not fitting:
        return
    denominator, out = fitting[0]
    decoder, _extents, offset, args = im.tile[0]
    im.tile = [ImageFile._Tile(decoder, (0, 0, *out), offset, args)]
    im._size = out
    im.decoderconfig = (denominator, 0)


def _transposes() -> dict[int, Any]:
    from PIL import Image

    t = Image.Transpose
    return {
        2: t.FLIP_LEFT_RIGHT,
        3: t.ROTATE_180,
        4: t.FLIP_TOP_BOTTOM,
        5: t.TRANSPOSE,
        6: t.ROTATE_270,
        7: t.TRANSVERSE,
        8: t.ROTATE_90,
    }


def _variant(
    *,
    eighths: bool = False,
    ycbcr: bool = False,
    resample: str = "LANCZOS",
    reducing_gap: float | None = 3.0,
    min_ratio: float = 1.0,
    draft: bool = True,
    save: dict[str, Any] | None = None,
) -> Callable[[Path, tuple[int, int], bool], Output]:
    def run(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
        from PIL import Image

        filter_ = Image.Resampling[resample]
        with Image.open(path) as im:
            orientation = _orientation(im)
            turned = orientation in (5, 6, 7, 8)
            upright = (im.height, im.width) if turned else im.size
            target = fit_within(upright, box)
            if turned:  # resize in the stored orientation, turn the small result
                target = (target[1], target[0])
            if im.format == "JPEG" and draft:
                _reduced_jpeg_decode(im, target, eighths=eighths, ycbcr=ycbcr, min_ratio=min_ratio)
            im.load()
            out = im
            if im.size != target:
                out = im.resize(target, filter_, reducing_gap=reducing_gap)
        if orientation != 1:
            out = out.transpose(_transposes()[orientation])
        out = out if out.mode in ("RGB", "YCbCr") else _flatten(out)
        if lossless and out.mode == "YCbCr":
            out = out.convert("RGB")
        return _save(out, lossless, **(save or {})), out.size

    return run


def pillow_thumbnail(path: Path, box: tuple[int, int], lossless: bool = False) -> Output:
    """Pillow's own ``Image.thumbnail``: draft to >= 2x the box, BICUBIC, reducing_gap 2."""
    from PIL import Image

    with Image.open(path) as im:
        im.thumbnail(box, Image.Resampling.BICUBIC, reducing_gap=2.0)
        out = _flatten(im)
    return _save(out, lossless), out.size


def _blocks_setup() -> None:
    from PIL import Image

    # Keep freed image memory blocks for reuse instead of returning them to the
    # OS: the next image of the same size needs no fresh pages.
    Image.core.set_blocks_max(64)


# The variant recommended for the app (see docs/performance.md); run by --quick too.
RECOMMENDED = "v-3/8+bicubic"

_VARIANTS: tuple[tuple[str, str, dict[str, Any], tuple[str, ...]], ...] = (
    ("v-ycc", "draft 1/2^k to YCbCr: no colour conversion either way", {"ycbcr": True}, ("JPEG",)),
    ("v-bicubic", "draft 1/2^k + BICUBIC", {"resample": "BICUBIC"}, ("JPEG", "PNG")),
    ("v-3/8", "decode at N/8 (3/8 allowed) + LANCZOS", {"eighths": True}, ("JPEG",)),
    (
        "v-3/8+bicubic",
        "decode at N/8 (3/8 allowed) + BICUBIC",
        {"eighths": True, "resample": "BICUBIC"},
        ("JPEG",),
    ),
    (
        "v-3/8+ycc+bicubic",
        "N/8 decode to YCbCr + BICUBIC",
        {"eighths": True, "ycbcr": True, "resample": "BICUBIC"},
        ("JPEG",),
    ),
    (
        "v-3/8+bicubic+enc",
        "as v-3/8+bicubic, encoder options explicit (4:2:0, no optimize/progressive)",
        {
            "eighths": True,
            "resample": "BICUBIC",
            "save": {"subsampling": 2, "optimize": False, "progressive": False},
        },
        ("JPEG",),
    ),
    (
        "v-3/8+bilinear",
        "N/8 decode + BILINEAR (quality check)",
        {"eighths": True, "resample": "BILINEAR"},
        ("JPEG",),
    ),
    (
        "v-undersize",
        "draft below the target then upscale (quality check)",
        {"min_ratio": 0.5},
        ("JPEG",),
    ),
    ("v-gap2", "LANCZOS, reducing_gap 2.0", {"reducing_gap": 2.0}, ("PNG",)),
    ("v-gap1", "LANCZOS, reducing_gap 1.0 (reduce() by 2 first)", {"reducing_gap": 1.0}, ("PNG",)),
    (
        "v-gap1+bicubic",
        "reducing_gap 1.0 + BICUBIC",
        {"reducing_gap": 1.0, "resample": "BICUBIC"},
        ("PNG",),
    ),
)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("naive", "Pillow: open, resize(LANCZOS), save q85", naive, "baseline"),
        Method(
            "pyvips",
            "libvips thumbnail + jpegsave q85, 1 thread",
            pyvips_thumbnail,
            "baseline",
            setup=pyvips_setup,
        ),
        Method("ours", "django_image_sync.processing.resize_image", ours, "ours"),
        # Importing the vips backend turns libvips' cache off and sets one thread.
        Method(
            "ours-vips",
            "processing.backends.vips.resize_image (libvips backend)",
            ours_vips,
            "ours",
        ),
        *(
            Method(name, description, _variant(**options), "variant", formats)
            for name, description, options, formats in _VARIANTS
        ),
        Method(
            "v-thumbnail",
            "Pillow's Image.thumbnail (BICUBIC, reducing_gap 2)",
            pillow_thumbnail,
            "variant",
        ),
        Method(
            "v-3/8+bicubic+blocks",
            "v-3/8+bicubic + Pillow block cache (set_blocks_max)",
            _variant(eighths=True, resample="BICUBIC"),
            "variant",
            ("JPEG",),
            setup=_blocks_setup,
        ),
    )
}
