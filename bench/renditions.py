"""Renditions: what each extra width and format costs a worker, and what it saves.

``python -m bench.renditions [--quick] [--sweep] [--markdown]`` (or
``bench/run --only renditions [--sweep]``) measures, in one process and one run:

- cost: CPU time (``time.process_time``, best of N, interleaved) of a
  ``render()`` of the default plan (widths 480/960/1440, AVIF and WebP beside
  the JPEG, placeholder) against a plan of the main output alone, on each
  backend; the full run also times the plans in between;
- bytes and quality: at each width of the plan, the AVIF and WebP bytes as a
  ratio of the JPEG's (quality 85) and the SSIM of each against a
  full-resolution reference;
- with ``--sweep``: a grid of AVIF (quality, speed) and WebP (quality, method)
  settings, each encoded from the very pixels the JPEG was, to choose defaults.

Quality metric: SSIM (Wang et al. 2004: 11x11 gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03, L = 255, mean over the windows inside the image) on luma
(Y = 0.299 R + 0.587 G + 0.114 B) of 8-bit RGB pixels. Reference: the source
decoded at full size (no reduced decode), turned upright, resized with LANCZOS
to the output's size; transparent images are compared composited over white.
"""

from __future__ import annotations

import os

# One thread everywhere, as bench/run sets it (before pyvips can be imported).
for _name in ("VIPS_CONCURRENCY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from bench.images import CORPUS, corpus_images, encode, generated_images, photo_like  # noqa: E402
from django_image_sync.conf import FORMAT_OPTION_DEFAULTS  # noqa: E402

BOX = (1920, 1080)
WIDTHS = (480, 960, 1440)
JPEG_QUALITY = 85
WHITE = (255, 255, 255)

# The package's defaults (chosen with --sweep; docs/performance.md), so that the
# normal run always measures what a site gets without FORMAT_OPTIONS.
AVIF_DEFAULT = (  # (quality, speed)
    FORMAT_OPTION_DEFAULTS["AVIF"]["quality"],
    FORMAT_OPTION_DEFAULTS["AVIF"]["speed"],
)
WEBP_DEFAULT = (  # (quality, method)
    FORMAT_OPTION_DEFAULTS["WEBP"]["quality"],
    FORMAT_OPTION_DEFAULTS["WEBP"]["method"],
)

# The sweep's grid. Above AVIF q65 and WebP q85: added because no lower
# setting reached the JPEG's SSIM.
AVIF_QUALITIES = (45, 50, 55, 60, 65, 70, 75, 80)
AVIF_SPEEDS = (8, 9)
WEBP_QUALITIES = (70, 75, 80, 85, 90)
WEBP_METHODS = (0, 2, 4)

# Photos of ../shared/corpus measured besides the generated ones.
SMALL_PHOTO = "gps/DSCN0010.jpg"  # 640x480
ALPHA_SIZE = (1600, 1200)


@dataclass(frozen=True)
class Photo:
    key: str
    path: Path
    size: tuple[int, int]
    kind: str  # "photo" (2 MP and more), "small" or "alpha"

    @property
    def megapixels(self) -> float:
        return self.size[0] * self.size[1] / 1e6

    @property
    def label(self) -> str:
        return f"{self.key} {self.size[0]}x{self.size[1]}"


def avif(quality: int, speed: int) -> Any:
    from django_image_sync.processing import Encoding

    return Encoding("AVIF", (("quality", quality), ("speed", speed)))


def webp(quality: int, method: int) -> Any:
    from django_image_sync.processing import Encoding

    return Encoding("WEBP", (("quality", quality), ("method", method)))


def renderer(backend: str) -> Any:
    from django_image_sync.processing import renderer_for

    render = renderer_for(backend)
    if render is None:
        raise ValueError(f"backend {backend!r} has no render()")
    return render


def default_plan(backend: str, avif_setting: tuple[int, int], webp_setting: tuple[int, int]) -> Any:
    from django_image_sync.processing import RenditionPlan, ResizeSpec

    spec = ResizeSpec(box=BOX, format="JPEG", quality=JPEG_QUALITY, backend=backend)
    return RenditionPlan(spec, WIDTHS, (avif(*avif_setting), webp(*webp_setting)), True)


def cost_plans(full: Any, detailed: bool) -> dict[str, Any]:
    """Main output alone, (the plans in between,) the full plan."""
    from django_image_sync.processing import RenditionPlan

    plans = {"main output alone": RenditionPlan(full.main)}
    if detailed:
        avif_enc, webp_enc = full.formats
        plans["+ widths (JPEG)"] = RenditionPlan(full.main, full.widths)
        plans["+ widths + AVIF"] = RenditionPlan(full.main, full.widths, (avif_enc,))
        plans["+ widths + AVIF + WebP"] = RenditionPlan(
            full.main, full.widths, (avif_enc, webp_enc)
        )
    plans["full default set"] = full
    return plans


# -- images ------------------------------------------------------------------------------


def alpha_png(workdir: Path) -> Path:
    """A photo-like RGBA PNG whose alpha falls from opaque (top left) to 1/8 (bottom right)."""
    path = workdir / f"renditions-alpha-{ALPHA_SIZE[0]}x{ALPHA_SIZE[1]}.png"
    if not path.exists():
        width, height = ALPHA_SIZE
        rgba = photo_like(ALPHA_SIZE, 31).convert("RGBA")
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = (xx / (width - 1) + yy / (height - 1)) / 2
        alpha = np.round(255 - ramp * (255 - 32)).astype(np.uint8)
        rgba.putalpha(Image.fromarray(alpha, mode="L"))
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(encode(rgba, "PNG", compress_level=6))
        tmp.replace(path)
    return path


def photos(workdir: Path, *, corpus: bool, quick: bool) -> list[Photo]:
    found = []
    for im in generated_images(workdir):
        if im.format == "JPEG" and not (quick and im.key != "jpeg-12mp"):
            found.append(Photo(im.key, im.path, im.size, "photo"))
    if corpus:
        for im in corpus_images(workdir):
            found.append(Photo(im.key, im.path, im.size, "photo"))
        small = CORPUS / SMALL_PHOTO
        if small.is_file():
            target = workdir / "corpus" / SMALL_PHOTO.replace("/", "_")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(small, target)
            with Image.open(target) as im:
                found.append(Photo(f"corpus:{small.stem}", target, im.size, "small"))
    found.append(Photo("png-alpha", alpha_png(workdir), ALPHA_SIZE, "alpha"))
    return found


# -- quality -----------------------------------------------------------------------------


def over_white(im: Image.Image) -> np.ndarray:
    """8-bit RGB pixels, anything transparent composited over white."""
    if im.mode in ("LA", "PA", "P") or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        canvas = Image.new("RGB", im.size, WHITE)
        canvas.paste(im.convert("RGB"), mask=im.getchannel("A"))
        im = canvas
    return np.asarray(im.convert("RGB"))


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return over_white(im)


class Reference:
    """The source decoded at full size, upright, LANCZOS to each size, over white."""

    def __init__(self, path: Path) -> None:
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
        if upright.mode not in ("RGB", "RGBA"):
            upright = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
        self.source = upright
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def at(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._cache:
            # Pillow resizes RGBA premultiplied, so transparent pixels do not bleed.
            self._cache[size] = over_white(self.source.resize(size, Image.Resampling.LANCZOS))
        return self._cache[size]


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


KERNEL = _gaussian()


def _window_mean(a: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean of every 11x11 window that lies inside ``a``."""
    n = len(KERNEL)
    h, w = a.shape
    rows = KERNEL[0] * a[:, : w - n + 1]
    for i in range(1, n):
        rows += KERNEL[i] * a[:, i : w - n + 1 + i]
    out = KERNEL[0] * rows[: h - n + 1]
    for i in range(1, n):
        out += KERNEL[i] * rows[i : h - n + 1 + i]
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    pixels = rgb.astype(np.float64)
    return 0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma of two 8-bit RGB images of the same size."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _window_mean(x), _window_mean(y)
    vx = _window_mean(x * x) - mx * mx
    vy = _window_mean(y * y) - my * my
    cxy = _window_mean(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


# -- a) cost -----------------------------------------------------------------------------


@dataclass
class Cost:
    photo: Photo
    backend: str
    plan: str
    times: list[float] = field(default_factory=list)  # CPU seconds per render
    outputs: int = 0
    out_bytes: int = 0

    @property
    def best_ms(self) -> float:
        return min(self.times) * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000


def backends_available() -> list[str]:
    names = ["pillow"]
    try:
        from django_image_sync.processing.backends import vips  # noqa: F401
    except Exception:  # pyvips or libvips missing: measure Pillow alone
        return names
    return [*names, "vips"]


def measure_cost(
    images: list[Photo],
    backends: list[str],
    settings: tuple[tuple[int, int], tuple[int, int]],
    *,
    repeats: int,
    detailed: bool,
    note: Callable[[str], None],
) -> list[Cost]:
    results: list[Cost] = []
    for photo in images:
        data = photo.path.read_bytes()
        for backend in backends:
            render = renderer(backend)
            plans = cost_plans(default_plan(backend, *settings), detailed)
            found = {name: Cost(photo, backend, name) for name in plans}
            for name, plan in plans.items():  # warm-up: encoders loaded, caches filled
                rendered = render(io.BytesIO(data), plan)
                found[name].outputs = len(rendered.outputs) + bool(rendered.placeholder)
                found[name].out_bytes = sum(len(o.data or b"") for o in rendered.outputs)
            for index in range(repeats):
                # Interleaved, alternating order: a burst of load hits every plan.
                order = list(plans) if index % 2 == 0 else list(reversed(plans))
                for name in order:
                    start = time.process_time()
                    render(io.BytesIO(data), plans[name])
                    found[name].times.append(time.process_time() - start)
            results += found.values()
            main, full = found["main output alone"], found["full default set"]
            note(
                f"cost {photo.key} {backend}: main {main.best_ms:.0f} ms,"
                f" full {full.best_ms:.0f} ms ({full.best_ms / main.best_ms:.2f}x)"
            )
    return results


# -- b) bytes and quality ----------------------------------------------------------------


@dataclass
class Level:
    photo: Photo
    size: tuple[int, int]
    bytes: dict[str, int]  # format -> bytes
    ssim: dict[str, float]  # format -> SSIM against the reference


def measure_quality(
    images: list[Photo], backend: str, settings: tuple[tuple[int, int], tuple[int, int]]
) -> list[Level]:
    render = renderer(backend)
    plan = default_plan(backend, *settings)
    levels: list[Level] = []
    for photo in images:
        reference = Reference(photo.path)
        # Bytes this function keeps alive: libvips reads them after
        # render()'s own read() would have let them go (a file object fails).
        data = photo.path.read_bytes()
        rendered = render(io.BytesIO(data), plan)
        by_size: dict[tuple[int, int], Level] = {}
        for output in rendered.outputs:
            size = (output.planned.width, output.planned.height)
            level = by_size.setdefault(size, Level(photo, size, {}, {}))
            assert output.data is not None
            level.bytes[output.planned.format] = len(output.data)
            level.ssim[output.planned.format] = ssim(decode(output.data), reference.at(size))
        levels += by_size.values()
    return levels


# -- c) the sweep ------------------------------------------------------------------------


@dataclass
class Setting:
    encoding: Any
    ratios: list[float] = field(default_factory=list)  # bytes / JPEG q85 bytes
    diffs: list[float] = field(default_factory=list)  # SSIM - JPEG q85's SSIM
    photo_ratios: list[float] = field(default_factory=list)  # the 2 MP+ photos only
    photo_diffs: list[float] = field(default_factory=list)
    encode_times: list[float] = field(default_factory=list)  # CPU s at 1440x1080

    @property
    def label(self) -> str:
        options = dict(self.encoding.options)
        if self.encoding.format == "AVIF":
            return f"AVIF q{options['quality']} speed {options['speed']}"
        return f"WebP q{options['quality']} method {options['method']}"

    @property
    def encode_ms(self) -> float:
        return min(self.encode_times) * 1000 if self.encode_times else float("nan")


def sweep_settings() -> list[Setting]:
    grid = [avif(q, s) for s in AVIF_SPEEDS for q in AVIF_QUALITIES]
    grid += [webp(q, m) for m in WEBP_METHODS for q in WEBP_QUALITIES]
    return [Setting(encoding) for encoding in grid]


def plan_levels(photo: Photo) -> tuple[list[Image.Image], str, bytes | None, Any]:
    """The pixels the Pillow backend encodes at each width of the default plan.

    The same steps as ``backends.pillow.render``: one decode to the main size,
    then LANCZOS from each width to the next narrower one.
    """
    from django_image_sync.processing.backends import pillow as backend

    plan = default_plan("pillow", AVIF_DEFAULT, WEBP_DEFAULT)
    with photo.path.open("rb") as fh:
        im, source_mode, icc_profile = backend._decode(fh, plan.main)
    levels = [im]
    for planned in plan.outputs(im.size):
        size = (planned.width, planned.height)
        if size != levels[-1].size:
            levels.append(levels[-1].resize(size, Image.Resampling.LANCZOS))
    return levels, source_mode, icc_profile, plan.main


def run_sweep(
    images: list[Photo], *, timing_photo: Photo | None, repeats: int, note: Callable[[str], None]
) -> tuple[list[Setting], float]:
    """Every setting on every width of every image; returns the JPEG's encode ms too."""
    from django_image_sync.processing import Encoding
    from django_image_sync.processing.backends import pillow as backend

    settings = sweep_settings()
    jpeg = Encoding("JPEG", (("quality", JPEG_QUALITY),))
    for photo in images:
        levels, source_mode, icc_profile, spec = plan_levels(photo)
        reference = Reference(photo.path)
        for im in levels:
            truth = reference.at(im.size)
            jpeg_data, _ = backend._encode(im, jpeg, spec, source_mode, icc_profile)
            jpeg_ssim = ssim(decode(jpeg_data), truth)
            for setting in settings:
                data, _ = backend._encode(im, setting.encoding, spec, source_mode, icc_profile)
                ratio = len(data) / len(jpeg_data)
                diff = ssim(decode(data), truth) - jpeg_ssim
                setting.ratios.append(ratio)
                setting.diffs.append(diff)
                if photo.kind == "photo":
                    setting.photo_ratios.append(ratio)
                    setting.photo_diffs.append(diff)
        note(f"sweep: {photo.key} done")
    jpeg_times: list[float] = []
    if timing_photo is not None:
        levels, source_mode, icc_profile, spec = plan_levels(timing_photo)
        main = levels[0]
        for index in range(repeats):
            for setting in settings if index % 2 == 0 else list(reversed(settings)):
                start = time.process_time()
                backend._encode(main, setting.encoding, spec, source_mode, icc_profile)
                setting.encode_times.append(time.process_time() - start)
            start = time.process_time()
            backend._encode(main, jpeg, spec, source_mode, icc_profile)
            jpeg_times.append(time.process_time() - start)
        note(f"sweep: encode times at {main.size[0]}x{main.size[1]} done")
    return settings, min(jpeg_times) * 1000 if jpeg_times else float("nan")


def choose(settings: list[Setting], fmt: str) -> tuple[Setting, bool]:
    """The fewest bytes among the settings never below the JPEG's SSIM on any
    photo of 2 MP or more at any width; else the one closest to it."""
    candidates = [s for s in settings if s.encoding.format == fmt]
    meeting = [s for s in candidates if min(s.photo_diffs) >= 0]
    if meeting:
        return min(meeting, key=lambda s: (statistics.mean(s.photo_ratios), s.encode_ms)), True
    return max(candidates, key=lambda s: min(s.photo_diffs)), False


# -- output ------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]], markdown: bool, left: int = 1) -> str:
    """Plain columns (as bench.report prints them) or a Markdown table."""
    if markdown:
        align = ["---" if i < left else "---:" for i in range(len(headers))]
        lines = [headers, align, *rows]
        return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(widths[i]) if i < left else str(c).rjust(widths[i])
            for i, c in enumerate(cells)
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def cost_table(costs: list[Cost], markdown: bool) -> str:
    rows = []
    for cost in costs:
        main = next(
            c
            for c in costs
            if c.photo == cost.photo and c.backend == cost.backend and c.plan == "main output alone"
        )
        rows.append(
            [
                cost.photo.label,
                cost.backend,
                cost.plan,
                str(cost.outputs),
                f"{cost.out_bytes / 1024:.0f}",
                f"{cost.best_ms:.0f}",
                f"{cost.median_ms:.0f}",
                f"{cost.best_ms / main.best_ms:.2f}x",
            ]
        )
    headers = ["image", "backend", "plan", "outputs", "KiB", "best ms", "median ms"]
    return table([*headers, "/ main (best)"], rows, markdown, left=3)


def quality_table(levels: list[Level], markdown: bool) -> str:
    rows = []
    for level in levels:
        jpeg = level.ssim["JPEG"]
        rows.append(
            [
                level.photo.label,
                f"{level.size[0]}x{level.size[1]}",
                f"{level.bytes['JPEG'] / 1024:.0f}",
                f"{level.bytes['AVIF'] / level.bytes['JPEG']:.2f}",
                f"{level.bytes['WEBP'] / level.bytes['JPEG']:.2f}",
                f"{jpeg:.4f}",
                f"{level.ssim['AVIF']:.4f}",
                f"{level.ssim['WEBP']:.4f}",
                f"{level.ssim['AVIF'] - jpeg:+.4f}",
                f"{level.ssim['WEBP'] - jpeg:+.4f}",
            ]
        )
    headers = ["image", "width", "JPEG KiB", "AVIF/JPEG", "WebP/JPEG", "SSIM JPEG"]
    headers += ["SSIM AVIF", "SSIM WebP", "AVIF-JPEG", "WebP-JPEG"]
    return table(headers, rows, markdown, left=2)


def quality_summary(quality: dict[str, list[Level]], markdown: bool) -> str:
    rows = []
    for backend, levels in quality.items():
        for kind, label in (("photo", "photos of 2 MP and more"), (None, "every image")):
            chosen = [lv for lv in levels if kind is None or lv.photo.kind == kind]
            for fmt in ("AVIF", "WEBP") if chosen else ():
                ratios = [lv.bytes[fmt] / lv.bytes["JPEG"] for lv in chosen]
                diffs = [lv.ssim[fmt] - lv.ssim["JPEG"] for lv in chosen]
                rows.append(
                    [
                        backend,
                        label,
                        fmt,
                        f"{statistics.mean(ratios):.2f}",
                        f"{max(ratios):.2f}",
                        f"{statistics.mean(diffs):+.4f}",
                        f"{min(diffs):+.4f}",
                        f"{sum(d >= 0 for d in diffs)}/{len(diffs)}",
                    ]
                )
    headers = ["backend", "images", "format", "bytes/JPEG mean", "max"]
    headers += ["SSIM diff mean", "min", "widths >= JPEG"]
    return table(headers, rows, markdown, left=3)


def sweep_table(settings: list[Setting], jpeg_ms: float, markdown: bool) -> str:
    rows = []
    for s in settings:
        rows.append(
            [
                s.label,
                f"{statistics.mean(s.photo_ratios):.3f}",
                f"{statistics.mean(s.photo_diffs):+.4f}",
                f"{min(s.photo_diffs):+.4f}",
                f"{statistics.mean(s.ratios):.3f}",
                f"{min(s.diffs):+.4f}",
                f"{s.encode_ms:.0f}",
                f"{s.encode_ms / jpeg_ms:.1f}",
            ]
        )
    headers = ["setting", "photos: bytes/JPEG", "SSIM diff mean", "min"]
    headers += ["all: bytes/JPEG", "SSIM diff min", "encode ms", "/ JPEG"]
    return table(headers, rows, markdown)


@dataclass
class Renditions:
    settings: tuple[tuple[int, int], tuple[int, int]]
    images: list[Photo]
    costs: list[Cost] = field(default_factory=list)
    quality: dict[str, list[Level]] = field(default_factory=dict)  # backend -> levels
    sweep: list[Setting] = field(default_factory=list)
    sweep_jpeg_ms: float = float("nan")
    repeats: int = 0


def goal_lines(r: Renditions, markdown: bool) -> str:
    rows = []
    for cost in r.costs:
        if cost.plan == "full default set" and cost.photo.key == "jpeg-12mp":
            main = next(
                c
                for c in r.costs
                if c.photo == cost.photo and c.backend == cost.backend and c.plan != cost.plan
            )
            ratio = cost.best_ms / main.best_ms
            verdict = "PASS" if ratio <= 2.5 else f"MISS by {100 * (ratio / 2.5 - 1):.0f}%"
            what = f"12 MP worker CPU: full default set / main alone ({cost.backend})"
            rows.append([what, f"{ratio:.2f}x", "<= 2.50x", verdict])
    levels = [lv for lv in r.quality.get("pillow", []) if lv.photo.kind == "photo"]
    for fmt in ("AVIF", "WEBP") if levels else ():
        ratio = statistics.mean(lv.bytes[fmt] / lv.bytes["JPEG"] for lv in levels)
        worst = min(lv.ssim[fmt] - lv.ssim["JPEG"] for lv in levels)
        verdict = "PASS" if ratio <= 0.6 else f"MISS by {100 * (ratio / 0.6 - 1):.0f}%"
        rows.append(
            [f"{fmt} bytes / JPEG q85, photos >= 2 MP (mean)", f"{ratio:.2f}x", "<= 0.60x", verdict]
        )
        verdict = "PASS" if worst >= 0 else f"MISS by {-worst:.4f}"
        rows.append(
            [f"{fmt} SSIM - JPEG q85 SSIM, worst photo and width", f"{worst:+.4f}", ">= 0", verdict]
        )
    return table(["goal", "measured", "target", "result"], rows, markdown)


def render_text(r: Renditions, markdown: bool = False) -> str:
    (aq, aspeed), (wq, wmethod) = r.settings
    plan = (
        f"widths {', '.join(map(str, WIDTHS))} below the main output (fit {BOX[0]}x{BOX[1]},"
        f" JPEG q{JPEG_QUALITY}), AVIF q{aq} speed {aspeed} and WebP q{wq} method {wmethod}"
        " at each width, placeholder"
    )
    out = [f"Default plan: {plan}."] if r.costs or r.quality else []
    if r.costs:
        out += [
            "",
            f"Worker cost of render() (CPU time, best of {r.repeats} after a warm-up, plans"
            " interleaved):",
            "",
            cost_table(r.costs, markdown),
        ]
    for backend, levels in r.quality.items():
        if backend == "pillow":
            out += [
                "",
                "Bytes and quality at each width (pillow backend; SSIM on luma against a"
                " full-resolution LANCZOS reference):",
                "",
                quality_table(levels, markdown),
            ]
    if r.quality:
        out += ["", "Summary over widths:", ""]
        out.append(quality_summary(r.quality, markdown))
    if r.sweep:
        out += [
            "",
            "Sweep (pillow backend; each setting encoded from the pixels the JPEG q85 was, at"
            " every width; 'photos' = the photos of 2 MP and more, 'all' adds the small photo"
            " and the transparent PNG; encode ms = best CPU time at the 12 MP photo's"
            f" main size, JPEG q85 {r.sweep_jpeg_ms:.0f} ms):",
            "",
            sweep_table(r.sweep, r.sweep_jpeg_ms, markdown),
        ]
        for fmt in ("AVIF", "WEBP"):
            best, met = choose(r.sweep, fmt)
            how = (
                "fewest bytes never below the JPEG's SSIM"
                if met
                else "no setting stays at the JPEG's SSIM everywhere; closest"
            )
            out.append(
                f"\n{fmt}: {best.label} ({how}): bytes/JPEG"
                f" {statistics.mean(best.photo_ratios):.3f}, SSIM diff min"
                f" {min(best.photo_diffs):+.4f}, {best.encode_ms:.0f} ms"
            )
    if r.costs or r.quality:
        out += ["", "Goals:", "", goal_lines(r, markdown)]
    return "\n".join(out)


def measure(
    workdir: Path,
    *,
    quick: bool,
    corpus: bool = True,
    sweep: bool = False,
    normal: bool = True,
    settings: tuple[tuple[int, int], tuple[int, int]] = (AVIF_DEFAULT, WEBP_DEFAULT),
    repeats: int | None = None,
    note: Callable[[str], None] = lambda text: None,
) -> Renditions:
    images = photos(workdir, corpus=corpus, quick=quick)
    repeats = repeats or (3 if quick else 7)
    result = Renditions(settings, images, repeats=repeats)
    backends = backends_available()
    if normal:
        big = [p for p in images if p.kind == "photo"]
        # The cost is judged on 12 MP; the full run times every photo of 2 MP and more.
        timed = [p for p in big if p.key == "jpeg-12mp"] if quick else big
        result.costs = measure_cost(
            timed, backends, settings, repeats=repeats, detailed=not quick, note=note
        )
        for backend in backends if not quick else ["pillow"]:
            result.quality[backend] = measure_quality(images, backend, settings)
            note(f"bytes and quality: {backend} done")
    if sweep:
        timing = next((p for p in images if p.key == "jpeg-12mp"), None)
        result.sweep, result.sweep_jpeg_ms = run_sweep(
            images, timing_photo=timing, repeats=3 if quick else 5, note=note
        )
    return result


def parse_pair(text: str) -> tuple[int, int]:
    first, second = text.split(",")
    return int(first), int(second)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.renditions", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="12 MP photo only, fewer repeats")
    parser.add_argument("--sweep", action="store_true", help="also sweep AVIF/WebP settings (slow)")
    parser.add_argument("--sweep-only", action="store_true", help="the sweep alone")
    parser.add_argument("--no-corpus", action="store_true", help="skip ../shared/corpus")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--repeats", type=int, help="timed repeats per plan (best of them)")
    parser.add_argument(
        "--avif", type=parse_pair, default=AVIF_DEFAULT, help="QUALITY,SPEED (default %(default)s)"
    )
    parser.add_argument(
        "--webp", type=parse_pair, default=WEBP_DEFAULT, help="QUALITY,METHOD (default %(default)s)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"django-image-sync-bench-{os.getuid()}",
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def note(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    from PIL import features

    from bench.__main__ import loadavg, machine

    info = machine()
    info["libavif, libwebp"] = f"{features.version('avif')}, {features.version('webp')}"
    info["load average at start"] = loadavg()
    info["command"] = " ".join(
        ["python -m bench.renditions", *(argv if argv is not None else sys.argv[1:])]
    )
    result = measure(
        args.workdir,
        quick=args.quick,
        corpus=not args.no_corpus,
        sweep=args.sweep or args.sweep_only,
        normal=not args.sweep_only,
        settings=(args.avif, args.webp),
        repeats=args.repeats,
        note=note,
    )
    info["load average at end"] = loadavg()
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    width = max(len(k) for k in info)
    print("django-image-sync benchmark: renditions\n")
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in info.items()))
    print()
    print(render_text(result, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
