"""Photo-like test images, made deterministically (same bytes on every run).

A camera photo has detail at every scale: large smooth areas, objects with hard
edges, texture, and sensor grain. The generator layers the same: 1/f-style
multi-octave noise, random filled shapes and strokes with sharp edges, fine
texture, and per-pixel grain. Resampling filters and reduced-size JPEG decodes
then differ the way they do on real photos (a plain gradient would hide them).

Files are cached under a work folder, keyed by size, seed and ``GENERATOR``.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Bumped when the generator changes, so cached files are made again.
GENERATOR = 4

BOX = (1920, 1080)
REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
# Corpus photos large enough to be resized (the others are at most 640x480).
CORPUS_PHOTOS = ("hdr/iphone_hdr_YES.jpg", "mobile/jolla.jpg")


@dataclass(frozen=True)
class TestImage:
    key: str  # short label used in the table
    path: Path
    format: str  # "JPEG" or "PNG"
    mode: str
    size: tuple[int, int]

    @property
    def megapixels(self) -> float:
        return self.size[0] * self.size[1] / 1e6

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


def _octave(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth random field with features about ``cell`` pixels wide, values ~[-1, 1]."""
    width, height = size
    grid = (max(2, height // cell + 2), max(2, width // cell + 2))
    channels = []
    for _ in range(3):
        small = rng.uniform(-1.0, 1.0, grid).astype(np.float32)
        layer = Image.fromarray(small, mode="F").resize(size, Image.Resampling.BICUBIC)
        channels.append(np.asarray(layer))
    return np.stack(channels, axis=-1)


def photo_like(size: tuple[int, int], seed: int, *, alpha: bool = False) -> Image.Image:
    """An RGB (or RGBA) image with photo-like detail at every scale."""
    rng = np.random.default_rng(seed)
    width, height = size
    longest = max(size)
    pixels = np.full((height, width, 3), 128.0, dtype=np.float32)
    # Large to small features, amplitude falling with size (roughly 1/f).
    for cell, amplitude in (
        (longest // 3, 70.0),
        (longest // 12, 35.0),
        (longest // 48, 18.0),
        (longest // 200, 12.0),
    ):
        pixels += amplitude * _octave(rng, size, max(2, cell))

    # Objects: filled shapes and strokes with hard edges, drawn on an overlay
    # and blended, so edges cut through the smooth background.
    overlay = Image.new("RGB", size, (0, 0, 0))
    mask = Image.new("L", size, 0)
    draw, draw_mask = ImageDraw.Draw(overlay), ImageDraw.Draw(mask)
    for _ in range(60):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w = int(rng.integers(longest // 60, longest // 6))
        h = int(rng.integers(longest // 60, longest // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        opacity = int(rng.integers(120, 256))
        shape = int(rng.integers(0, 3))
        box = (x0, y0, x0 + w, y0 + h)
        if shape == 0:
            draw.ellipse(box, fill=colour)
            draw_mask.ellipse(box, fill=opacity)
        elif shape == 1:
            points = [
                (int(rng.integers(x0, x0 + w)), int(rng.integers(y0, y0 + h))) for _ in range(5)
            ]
            draw.polygon(points, fill=colour)
            draw_mask.polygon(points, fill=opacity)
        else:
            line_width = int(rng.integers(1, max(2, longest // 400)))
            draw.line(box, fill=colour, width=line_width)
            draw_mask.line(box, fill=opacity, width=line_width)
    weight = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    pixels = pixels * (1.0 - weight) + np.asarray(overlay, dtype=np.float32) * weight
    del overlay, mask, weight

    # Texture a few pixels wide (foliage, fabric) and sensor grain.
    pixels += 10.0 * _octave(rng, size, 4)
    pixels += rng.normal(0.0, 3.0, pixels.shape).astype(np.float32)
    rgb = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    del pixels
    if not alpha:
        return rgb
    # Alpha: opaque subject, soft vignette, fully transparent corners.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    alpha_channel = np.clip((1.25 - distance) * 400.0, 0, 255).astype(np.uint8)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha_channel, mode="L"))
    return rgba


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


# key, size, format, mode, seed
GENERATED = (
    ("jpeg-12mp", (4000, 3000), "JPEG", "RGB", 12),
    ("jpeg-24mp", (6000, 4000), "JPEG", "RGB", 24),
    ("png-rgb", (4000, 3000), "PNG", "RGB", 6),
    ("png-rgba", (4000, 3000), "PNG", "RGBA", 7),
)


def generated_images(workdir: Path) -> list[TestImage]:
    folder = workdir / f"images-v{GENERATOR}"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for key, size, fmt, mode, seed in GENERATED:
        path = folder / f"{key}-{size[0]}x{size[1]}.{'jpg' if fmt == 'JPEG' else 'png'}"
        if not path.exists():
            im = photo_like(size, seed, alpha=mode == "RGBA")
            params: dict[str, object] = {"quality": 92} if fmt == "JPEG" else {"compress_level": 6}
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(encode(im, fmt, **params))
            tmp.replace(path)
        images.append(TestImage(key, path, fmt, mode, size))
    return images


# A spread of the sizes and shapes cameras and phones produce, 2 to 24 MP, for the
# worker part and the per-size resize rows: key, stored size, EXIF orientation,
# JPEG quality, seed. The corpus has only two photos large enough to resize (both
# 3264x2448), so the others are generated the way a camera writes them: the
# photo-like content above, 4:2:0 chroma subsampling, standard Huffman tables,
# an EXIF block (make, model, date, orientation) and, for a phone held upright,
# the pixels stored on their side with orientation 6 (or 8), as phones do.
CAMERA = (
    ("cam-2mp", (1600, 1200), 1, 90, 31),
    ("cam-4mp-16x10", (2560, 1600), 1, 90, 32),
    ("cam-5mp-portrait", (2592, 1944), 6, 90, 33),
    ("cam-9mp-pano", (4608, 1976), 1, 90, 34),
    ("cam-12mp", (4032, 3024), 1, 90, 35),
    ("cam-12mp-portrait", (4032, 3024), 6, 90, 36),
    ("cam-16mp-portrait", (3456, 4608), 1, 88, 37),
    ("cam-20mp", (5472, 3648), 8, 88, 38),
    ("cam-24mp", (6000, 4000), 1, 88, 39),
)
# The subset --quick uses: one of each regime of the reduced JPEG decode
# (full, 1/2, 3/8) and a portrait stored on its side.
CAMERA_QUICK = ("cam-4mp-16x10", "cam-9mp-pano", "cam-12mp-portrait", "cam-24mp")


def camera_exif(orientation: int, seed: int) -> bytes:
    """An EXIF block as a camera writes one (the fields the app reads or strips)."""
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0110] = f"Model {seed}"  # Model
    exif[0x0112] = orientation
    exif[0x0132] = "2026:12:06 12:00:00"  # DateTime
    exif[0x0131] = "bench/images.py"  # Software
    return exif.tobytes()


def camera_images(workdir: Path, *, quick: bool = False, corpus: bool = True) -> list[TestImage]:
    """The camera mix (generated once, cached), then the corpus photos when present.

    ``size`` is the stored size; with orientation 6 or 8 the photo shows turned.
    """
    folder = workdir / f"camera-v{GENERATOR}"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for key, size, orientation, quality, seed in CAMERA:
        if quick and key not in CAMERA_QUICK:
            continue
        path = folder / f"{key}-{size[0]}x{size[1]}-o{orientation}-q{quality}.jpg"
        if not path.exists():
            turned = orientation in (6, 8)
            upright = photo_like((size[1], size[0]) if turned else size, seed)
            # Stored so that applying the orientation shows ``upright``.
            stored = {
                6: Image.Transpose.ROTATE_90,
                8: Image.Transpose.ROTATE_270,
            }.get(orientation)
            pixels = upright.transpose(stored) if stored is not None else upright
            data = encode(
                pixels, "JPEG", quality=quality, subsampling=2, exif=camera_exif(orientation, seed)
            )
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        images.append(TestImage(key, path, "JPEG", "RGB", size))
    if corpus and not quick:
        images += corpus_images(workdir)
    return images


def corpus_images(workdir: Path) -> list[TestImage]:
    """The larger camera photos of ``../shared/corpus``, when that folder exists."""
    images = []
    for relative in CORPUS_PHOTOS:
        source = CORPUS / relative
        if not source.is_file():
            continue
        # Copied to the work folder (never into the repository) so every method
        # reads from the same disk.
        target = workdir / "corpus" / relative.replace("/", "_")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        with Image.open(target) as im:
            images.append(TestImage(f"corpus:{source.stem}", target, "JPEG", im.mode, im.size))
    return images


def with_unique_comment(jpeg: bytes, tag: str) -> bytes:
    """The same JPEG with a COM segment after SOI: other bytes, other hashes, same picture."""
    payload = tag.encode()
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]


def jpeg_near(size: tuple[int, int], seed: int, target_bytes: int) -> bytes:
    """A photo-like JPEG of ``size`` at the highest quality whose file fits ``target_bytes``."""
    im = photo_like(size, seed)
    data = b""
    for quality in (95, 92, 90, 88, 85, 82, 80, 75, 70, 60, 50):
        data = encode(im, "JPEG", quality=quality)
        if len(data) <= target_bytes:
            break
    return data
