"""The app's settings: one ``IMAGE_SYNC`` dict in the site's settings.

Every value is read at access time, so ``override_settings(IMAGE_SYNC=...)``
works in tests and nothing is cached at import.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings as django_settings

from . import processing

MiB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    # Fit resized images inside this box (width, height); never upscale.
    "TARGET_SIZE": (1920, 1080),
    # How many files one submission may carry.
    "MAX_FILES": 2,
    # Largest accepted file, in bytes.
    "MAX_FILE_SIZE": 5 * MiB,
    # Largest accepted image in pixels, all frames counted (decompression bombs).
    "MAX_PIXELS": 50_000_000,
    # Formats accepted, decided by decoding the content (never by name or type).
    "ALLOWED_FORMATS": ("JPEG", "PNG"),
    # Alias in STORAGES used for originals (and for resized files, unless
    # OUTPUT_STORAGE names another).
    "STORAGE": "default",
    # Alias in STORAGES for the resized files and renditions (None: STORAGE),
    # so originals can stay private while outputs are public.
    "OUTPUT_STORAGE": None,
    # Alias in CACHES used for resize results.
    "CACHE": "default",
    # How long a resize result stays cached, in seconds (None: until evicted).
    "CACHE_TIMEOUT": 60 * 60 * 24 * 30,
    # Refuse uploads and listings to anonymous users.
    "REQUIRE_AUTH": True,
    # "owner": each user has their own copy of identical content;
    # "global": identical content is stored once for the whole site and shared.
    "DEDUP_SCOPE": "owner",
    # Format of resized files: "JPEG", "PNG" or "WEBP".
    "OUTPUT_FORMAT": "JPEG",
    # Encoder quality for JPEG and WEBP output (1-100; above 95 mostly adds bytes).
    "QUALITY": 85,
    # Colour that transparency is flattened onto when the output has no alpha.
    "BACKGROUND_COLOR": (255, 255, 255),
    # Folder (storage prefix) under which every file of the app is stored.
    "UPLOAD_TO": "image_sync",
    # Page size of the gallery and of the list API.
    "PAGE_SIZE": 24,
    # How many times a task may claim one image before it is marked failed.
    "MAX_ATTEMPTS": 5,
    # The worker's resize pipeline: "pillow"; "vips" (libvips through pyvips,
    # faster on PNG); or "auto" (each library where it is the faster: Pillow's
    # reduced JPEG decode, libvips for the rest; the fastest on camera photos).
    # The last two need `pip install django-image-sync[vips]`.
    "BACKEND": "pillow",
    # Most memory, in bytes, that resizing one accepted image may need on the
    # chosen backend, estimated at upload from the file's header (None: no limit).
    "MAX_DECODE_MEMORY": 256 * MiB,
    # Most scans a JPEG may have: each is a pass over the whole image.
    "MAX_JPEG_SCANS": 100,
    # Seconds a worker may spend on one image before it is marked failed.
    "PROCESSING_TIME_LIMIT": 120,
    # Seconds an image keeps being tried again after temporary failures
    # (storage or database down) before it is marked failed; meanwhile it
    # waits "pending" with its last error, and the sweeper queues it again.
    "RETRY_HORIZON": 60 * 60 * 24,
    # Besides the main output, a copy at each of these widths narrower than it
    # (same aspect ratio, never upscaled); () for none.
    "RENDITION_WIDTHS": (480, 960, 1440),
    # Extra formats, each made at the main size and every rendition width,
    # beside OUTPUT_FORMAT; () for none. "AVIF", "WEBP" (and "JPEG", "PNG").
    "RENDITION_FORMATS": ("AVIF", "WEBP"),
    # Encoder options per extra format, merged over FORMAT_OPTION_DEFAULTS:
    # AVIF quality (0-100) and speed (0-10, higher is faster), WEBP quality
    # (0-100) and method (0-6, higher is slower and smaller).
    "FORMAT_OPTIONS": {},
    # A tiny blurred preview of each image, stored in its row as a data: URI.
    "PLACEHOLDER": True,
}

# Chosen by measurement (docs/performance.md, "Renditions"; SSIM on luma against
# a full-resolution reference, beside the JPEG at QUALITY 85). AVIF: the lowest
# quality as good as the JPEG on average (0.86x its bytes); speed 9, since 8
# saves 2 % of the bytes for 1.8x the time. WebP: at the JPEG's SSIM it is
# larger than the JPEG (q90: 1.08x), so q85 (0.74x, SSIM 0.013 lower on
# average); method 2, since 4 saves 2 % for twice the time.
FORMAT_OPTION_DEFAULTS: dict[str, dict[str, int]] = {
    "AVIF": {"quality": 75, "speed": 9},
    "WEBP": {"quality": 85, "method": 2},
    "JPEG": {"quality": 85},
    "PNG": {},
}
# The options each format takes, with their bounds.
FORMAT_OPTION_RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "AVIF": {"quality": (0, 100), "speed": (0, 10)},
    "WEBP": {"quality": (0, 100), "method": (0, 6)},
    "JPEG": {"quality": (1, 100)},
    "PNG": {},
}

OUTPUT_FORMATS = ("JPEG", "PNG", "WEBP")
RENDITION_FORMATS = ("AVIF", "WEBP", "JPEG", "PNG")
SUPPORTED_INPUT_FORMATS = ("JPEG", "PNG")
DEDUP_SCOPES = ("owner", "global")


def user_settings() -> dict[str, Any]:
    value = getattr(django_settings, "IMAGE_SYNC", None) or {}
    # Anything but a dict is reported by check E010 and otherwise ignored.
    return dict(value) if isinstance(value, dict) else {}


def get(name: str) -> Any:
    """Return the current value of one setting, falling back to its default."""
    if name not in DEFAULTS:
        raise AttributeError(f"Unknown django-image-sync setting: {name}")
    return user_settings().get(name, DEFAULTS[name])


class _Settings:
    """Attribute access to the settings: ``conf.settings.TARGET_SIZE``."""

    def __getattr__(self, name: str) -> Any:
        return get(name)

    def __dir__(self) -> list[str]:
        return list(DEFAULTS)


settings = _Settings()


def resize_spec() -> processing.ResizeSpec:
    """The resize the settings ask for now: everything that decides a resized file's bytes."""
    box = get("TARGET_SIZE")
    background = get("BACKGROUND_COLOR")
    return processing.ResizeSpec(
        box=(int(box[0]), int(box[1])),
        format=get("OUTPUT_FORMAT").upper(),
        quality=int(get("QUALITY")),
        background=(int(background[0]), int(background[1]), int(background[2])),
        backend=processing.backend_name(str(get("BACKEND"))),
    )


def format_options(format_name: str) -> dict[str, int]:
    """The encoder options of an extra format: the defaults, then the site's."""
    options = dict(FORMAT_OPTION_DEFAULTS.get(format_name, {}))
    site = get("FORMAT_OPTIONS")
    if isinstance(site, dict):
        chosen = site.get(format_name) or site.get(format_name.lower()) or {}
        options.update({str(k): int(v) for k, v in dict(chosen).items()})
    return options


def output_plan() -> processing.RenditionPlan:
    """Every output the settings ask for now (see ``processing.RenditionPlan``).

    A backend of the site's own with only ``resize_image`` (no ``render``)
    makes the main output alone, so the plan holds that alone.
    """
    spec = resize_spec()
    try:
        can_render = processing.renderer_for(spec.backend) is not None
    except (ImportError, OSError, ValueError):
        can_render = True  # the worker reports the backend; check E011 explains it
    if not can_render:
        return processing.RenditionPlan(spec)
    formats = []
    # Each format once, whatever the list repeats (the order only orders <source>s).
    for format_name in dict.fromkeys(str(name).upper() for name in get("RENDITION_FORMATS") or ()):
        options = tuple(sorted(format_options(format_name).items()))
        formats.append(processing.Encoding(format_name, options))
    return processing.RenditionPlan(
        main=spec,
        widths=tuple(int(width) for width in get("RENDITION_WIDTHS") or ()),
        formats=tuple(formats),
        placeholder=bool(get("PLACEHOLDER")),
    )


def extra_format_names() -> tuple[str, ...]:
    """RENDITION_FORMATS as upper-case names; () where the setting is malformed (E014)."""
    raw = get("RENDITION_FORMATS")
    return tuple(str(f).upper() for f in raw) if isinstance(raw, list | tuple) else ()


def budgets_key(spec: processing.ResizeSpec) -> str:
    """A fingerprint of :func:`cost_limits`, what a file is checked against
    before a worker decodes it into ``spec``. An upload checked under the same
    key needs no second look in the worker."""
    limits = sorted(cost_limits(spec).items())
    return hashlib.sha256(repr(limits).encode()).hexdigest()[:16]


def cost_limits(spec: processing.ResizeSpec) -> dict[str, Any]:
    """The decode budgets, as keyword arguments of ``processing.inspect_image``:
    what a worker may spend on one image resized to ``spec``. The upload and the
    worker's second look check the same ones, and :func:`budgets_key` covers
    exactly these."""
    return {
        "max_pixels": get("MAX_PIXELS"),
        "box": spec.box,
        "backend": spec.backend,
        "formats": extra_format_names(),
        "max_decode_memory": get("MAX_DECODE_MEMORY"),
        "max_jpeg_scans": get("MAX_JPEG_SCANS"),
    }
