"""The rendition plan and ``render()`` of both backends: every output from one decode,
its size and name, the placeholder, and which settings change which names."""

from __future__ import annotations

import base64
import io
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from django_image_sync import processing
from django_image_sync.processing import placeholder
from tests.images import jpeg_bytes

AVIF = processing.Encoding("AVIF", (("quality", 60), ("speed", 9)))
WEBP = processing.Encoding("WEBP", (("quality", 80), ("method", 2)))


def plan(**changes: object) -> processing.RenditionPlan:
    values: dict[str, object] = {
        "main": processing.ResizeSpec(box=(1920, 1080)),
        "widths": (480, 960, 1440),
        "formats": (AVIF, WEBP),
        "placeholder": True,
    }
    values.update(changes)
    return processing.RenditionPlan(**values)  # type: ignore[arg-type]


def backends() -> list[str]:
    try:
        processing.resizer_for("vips")
    except (ImportError, OSError):
        return ["pillow"]
    return ["pillow", "vips"]


# -- the plan, without pixels ---------------------------------------------------------------


def test_outputs_of_a_landscape_and_a_small_image():
    outputs = plan().outputs((1920, 1080))
    assert [(o.format, o.width, o.height) for o in outputs] == [
        (fmt, width, height)
        for width, height in ((1920, 1080), (1440, 810), (960, 540), (480, 270))
        for fmt in ("JPEG", "AVIF", "WEBP")
    ]
    assert outputs[0].key == plan().main.key  # the main output keeps its old name
    small = plan().outputs((400, 300))  # no width is narrower: the main size alone
    assert [(o.format, o.width) for o in small] == [("JPEG", 400), ("AVIF", 400), ("WEBP", 400)]


def test_every_key_is_distinct_and_stable():
    keys = [o.key for o in plan().outputs((1440, 1080))]
    assert len(set(keys)) == len(keys)
    assert keys == [o.key for o in plan().outputs((1440, 1080))]


def test_a_changed_setting_renames_exactly_the_outputs_it_changes():
    before = {(o.format, o.width): o.key for o in plan().outputs((1440, 1080))}

    def changed(**changes: object) -> set[tuple[str, int]]:
        after = {(o.format, o.width): o.key for o in plan(**changes).outputs((1440, 1080))}
        return {k for k in before.keys() & after.keys() if before[k] != after[k]}

    # AVIF's quality: every AVIF file, nothing else.
    other_avif = processing.Encoding("AVIF", (("quality", 50), ("speed", 9)))
    assert changed(formats=(other_avif, WEBP)) == {k for k in before if k[0] == "AVIF"}
    # A width added below 480: nothing existing changes.
    assert changed(widths=(320, 480, 960, 1440)) == set()
    # A width added between 960 and 1440: 960 and 480 are now made from it.
    assert changed(widths=(480, 960, 1200, 1440)) == {k for k in before if k[1] in (960, 480)}
    # The main output's quality: everything, since every output comes from it.
    main = processing.ResizeSpec(box=(1920, 1080), quality=80)
    assert changed(main=main) == set(before)
    # The placeholder is no file: no name changes, but the plan's key does.
    assert changed(placeholder=False) == set()
    assert plan(placeholder=False).key != plan().key


# -- render, on both backends ---------------------------------------------------------------


@pytest.mark.parametrize("backend", backends())
def test_render_makes_every_output_upright_and_without_metadata(backend):
    data = jpeg_bytes((2400, 1600), seed=41, orientation=6)  # shown 1600x2400
    spec = processing.ResizeSpec(box=(1920, 1080), backend=backend)
    render = processing.renderer_for(backend)
    assert render is not None
    rendered = render(io.BytesIO(data), plan(main=spec), frozenset())
    sizes = [(o.planned.format, o.planned.width, o.planned.height) for o in rendered.outputs]
    assert sizes == [
        (f, w, h) for w, h in ((720, 1080), (480, 720)) for f in ("JPEG", "AVIF", "WEBP")
    ]
    reference = Image.open(io.BytesIO(data))
    reference = reference.transpose(Image.Transpose.ROTATE_270).convert("RGB")
    for output in rendered.outputs:
        assert output.data is not None
        with Image.open(io.BytesIO(output.data)) as im:
            assert (im.format, im.size) == (
                output.planned.format,
                (output.planned.width, output.planned.height),
            )
            assert not im.getexif()
            small = im.convert("RGB").resize((24, 36))
        expected = reference.resize((24, 36))
        difference = sum(ImageStat.Stat(ImageChops.difference(small, expected)).mean) / 3
        assert difference < 12, (output.planned, difference)


@pytest.mark.parametrize("backend", backends())
def test_outputs_asked_to_skip_are_not_encoded(backend):
    spec = processing.ResizeSpec(box=(1920, 1080), backend=backend)
    full = plan(main=spec)
    keys = [o.key for o in full.outputs((1200, 800))]
    render = processing.renderer_for(backend)
    assert render is not None
    rendered = render(io.BytesIO(jpeg_bytes((1200, 800), seed=42)), full, frozenset(keys[:4]))
    assert [o.data is None for o in rendered.outputs] == [True] * 4 + [False] * (len(keys) - 4)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("size", [(4000, 3000), (1000, 3000), (5000, 400), (300, 300)])
def test_placeholder_is_small_blurred_and_of_the_same_shape(backend, size):
    spec = processing.ResizeSpec(box=(1920, 1080), backend=backend)
    render = processing.renderer_for(backend)
    assert render is not None
    rendered = render(io.BytesIO(jpeg_bytes(size, seed=43)), plan(main=spec), frozenset())
    uri = rendered.placeholder
    assert uri.startswith("data:image/webp;base64,")
    assert len(uri) <= placeholder.MAX_BYTES
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        main = rendered.main.planned
        # A photo fits at the first step: 32 px on its longer side, same shape.
        assert im.size == placeholder.placeholder_size((main.width, main.height), 32)


def test_placeholder_of_noise_still_fits_in_1000_bytes():
    rng = random.Random(7)
    noise = Image.frombytes(
        "RGB", (1600, 1200), bytes(rng.getrandbits(8) for _ in range(1600 * 1200 * 3))
    )
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    render = processing.renderer_for("pillow")
    assert render is not None
    rendered = render(io.BytesIO(buffer.getvalue()), plan(), frozenset())
    assert 0 < len(rendered.placeholder) <= placeholder.MAX_BYTES


def test_no_placeholder_when_the_plan_has_none():
    render = processing.renderer_for("pillow")
    assert render is not None
    rendered = render(
        io.BytesIO(jpeg_bytes((800, 600), seed=44)), plan(placeholder=False), frozenset()
    )
    assert rendered.placeholder == ""


@pytest.mark.parametrize("backend", backends())
def test_narrower_widths_of_a_transparent_image_have_no_dark_fringes(backend):
    """Resampled with premultiplied alpha: the black of transparent pixels must not
    bleed into the edges of light stripes (it did on libvips: luma down to 223)."""
    stripes = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    for x in range(0, 2000, 40):
        stripes.paste((250, 250, 250, 255), (x, 0, x + 20, 1000))
    buffer = io.BytesIO()
    stripes.save(buffer, "PNG")
    spec = processing.ResizeSpec(box=(1920, 1080), backend=backend)
    render = processing.renderer_for(backend)
    assert render is not None
    rendered = render(io.BytesIO(buffer.getvalue()), plan(main=spec, widths=(481,)), frozenset())
    for output in rendered.outputs:
        assert output.data is not None
        with Image.open(io.BytesIO(output.data)) as im:
            shown = Image.new("RGBA", im.size, (255, 255, 255, 255))
            shown.alpha_composite(im.convert("RGBA"))
            darkest = shown.convert("L").getextrema()[0]
        assert darkest >= 240, (output.planned, darkest)
