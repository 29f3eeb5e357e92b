"""Every colour mode and kind of transparency Pillow opens from PNG and JPEG, resized by
both backends, against what a browser shows.

Each image is two flat halves: the left one opaque (or half transparent), the
right one fully transparent where the file has transparency, its colour black
so that a transparency the pipeline drops shows as black rather than as the
white ``BACKGROUND_COLOR``. What a browser shows is the sample composited over
that background: ``alpha x colour + (1 - alpha) x background``. JPEG output is
compared with a tolerance for its compression; PNG output keeps the alpha.
"""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from django_image_sync import processing
from tests.images import encode, png_from_samples

W, H = 32, 16
WHITE = (255, 255, 255)
# The JPEG encoder's error on flat 16x16 halves, measured at most 3; a dropped
# transparency is off by 255.
JPEG_TOLERANCE = 8


def _halves(left: tuple[int, ...], right: tuple[int, ...]) -> list[int]:
    samples: list[int] = []
    for _y in range(H):
        for x in range(W):
            samples.extend(left if x < W // 2 else right)
    return samples


def _shown(grey_or_rgb: tuple[float, ...], alpha: float) -> tuple[int, int, int]:
    """What a browser paints for a sample (0-1 scale) with ``alpha`` over white."""
    rgb = grey_or_rgb * 3 if len(grey_or_rgb) == 1 else grey_or_rgb
    return tuple(round(255 * (alpha * c + (1 - alpha))) for c in rgb)  # type: ignore[return-value]


def _cases() -> dict[str, tuple[bytes, tuple[int, int, int], tuple[int, int, int]]]:
    """name -> (file, shown left, shown right)."""
    cases = {}
    for depth in (1, 2, 4, 8, 16):
        top = (1 << depth) - 1
        grey = top // 2 if depth > 1 else top
        data = png_from_samples(
            W, H, _halves((grey,), (0,)), colour_type=0, depth=depth, trns=struct.pack(">H", 0)
        )
        cases[f"grey {depth}-bit, tRNS key"] = (data, _shown((grey / top,), 1), WHITE)
    for depth in (8, 16):
        top = (1 << depth) - 1
        half = top // 2
        cases[f"grey {depth}-bit, no transparency"] = (
            png_from_samples(W, H, _halves((half,), (0,)), colour_type=0, depth=depth),
            _shown((half / top,), 1),
            (0, 0, 0),
        )
        # A dark green, not black either; in 16 bits with a low byte unlike its
        # high byte (Pillow compares a 16-bit key's low byte with 8-bit samples).
        key = (0, 0x55 if depth == 8 else 0x1234, 0)
        cases[f"RGB {depth}-bit, tRNS key"] = (
            png_from_samples(
                W,
                H,
                _halves((half, 0, 0), key),
                colour_type=2,
                depth=depth,
                trns=struct.pack(">HHH", *key),
            ),
            _shown((half / top, 0, 0), 1),
            WHITE,
        )
        cases[f"grey+alpha {depth}-bit"] = (
            png_from_samples(W, H, _halves((0, half), (0, 0)), colour_type=4, depth=depth),
            _shown((0,), half / top),
            WHITE,
        )
        cases[f"RGBA {depth}-bit"] = (
            png_from_samples(
                W, H, _halves((top, 0, 0, half), (0, 0, 0, 0)), colour_type=6, depth=depth
            ),
            _shown((1, 0, 0), half / top),
            WHITE,
        )
    # A 16-bit key whose every sample is below 256: still 16-bit (0x0064 is not
    # the 8-bit 100 a pixel of 0x6464 would decode to).
    cases["RGB 16-bit, small tRNS key"] = (
        png_from_samples(
            W,
            H,
            _halves((0x6464, 0x6464, 0x6464), (0, 0, 100)),
            colour_type=2,
            depth=16,
            trns=struct.pack(">HHH", 0, 0, 100),
        ),
        (100, 100, 100),
        WHITE,
    )
    for depth in (1, 2, 4, 8):
        # Entry 0: red at alpha 0x80; entry 1: black, fully transparent.
        cases[f"palette {depth}-bit, tRNS alpha"] = (
            png_from_samples(
                W,
                H,
                _halves((0,), (1,)),
                colour_type=3,
                depth=depth,
                palette=b"\xff\x00\x00\x00\x00\x00",
                trns=b"\x80\x00",
            ),
            _shown((1, 0, 0), 0x80 / 255),
            WHITE,
        )
    grey = Image.new("L", (W, H), 0)
    grey.paste(128, (0, 0, W // 2, H))
    cases["JPEG grey"] = (encode(grey, "JPEG", quality=95), (128, 128, 128), (0, 0, 0))
    colour = Image.new("RGB", (W, H), (0, 0, 0))
    colour.paste((200, 40, 40), (0, 0, W // 2, H))
    cases["JPEG RGB"] = (encode(colour, "JPEG", quality=95), (200, 40, 40), (0, 0, 0))
    return cases


CASES = _cases()


def _backends() -> list[str]:
    try:
        processing.resizer_for("vips")
    except (ImportError, OSError):
        return ["pillow"]
    return ["pillow", "vips"]


def _near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("name", list(CASES))
def test_jpeg_output_shows_what_a_browser_shows(name, backend):
    data, left, right = CASES[name]
    spec = processing.ResizeSpec(box=(1920, 1080), background=WHITE, backend=backend)
    result = processing.resizer_for(backend)(io.BytesIO(data), spec)
    out = Image.open(io.BytesIO(result.data)).convert("RGB")
    assert out.size == (W, H)
    shown = (out.getpixel((W // 4, H // 2)), out.getpixel((3 * W // 4, H // 2)))
    assert _near(shown[0], left, JPEG_TOLERANCE), (name, shown, left)
    assert _near(shown[1], right, JPEG_TOLERANCE), (name, shown, right)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2] == WHITE])
def test_png_output_keeps_the_transparency(name, backend):
    data, _left, _right = CASES[name]
    spec = processing.ResizeSpec(box=(1920, 1080), format="PNG", backend=backend)
    result = processing.resizer_for(backend)(io.BytesIO(data), spec)
    out = Image.open(io.BytesIO(result.data)).convert("RGBA")
    assert out.getpixel((3 * W // 4, H // 2))[3] == 0, name
    assert out.getpixel((W // 4, H // 2))[3] > 0, name


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("fmt", ["AVIF", "WEBP"])
@pytest.mark.parametrize("name", ["grey 8-bit, tRNS key", "grey+alpha 16-bit", "RGBA 8-bit"])
def test_avif_and_webp_renditions_keep_the_transparency(name, fmt, backend):
    """Formats with alpha keep it, grey going to them as RGB(A) (processing.rules.output_mode)."""
    data, left, _right = CASES[name]
    spec = processing.ResizeSpec(box=(1920, 1080), background=WHITE, backend=backend)
    plan = processing.RenditionPlan(spec, formats=(processing.Encoding(fmt, (("quality", 90),)),))
    render = processing.renderer_for(backend)
    assert render is not None
    [_jpeg, extra] = render(io.BytesIO(data), plan, frozenset()).outputs
    assert extra.data is not None
    out = Image.open(io.BytesIO(extra.data))
    assert out.format == fmt
    assert "A" in out.mode
    pixels = out.convert("RGBA")
    assert pixels.getpixel((3 * W // 4, H // 2))[3] == 0, name
    shown = Image.alpha_composite(Image.new("RGBA", (W, H), (*WHITE, 255)), pixels).convert("RGB")
    assert _near(shown.getpixel((W // 4, H // 2)), left, 12), (
        name,
        shown.getpixel((W // 4, H // 2)),
    )
