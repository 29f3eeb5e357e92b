"""System checks: configuration mistakes show in ``manage.py check``, not at the first upload.

Ids in use (never reuse one): E001 STORAGE, E002 CACHE, E003 TARGET_SIZE,
E004 ALLOWED_FORMATS, E005 OUTPUT_FORMAT, E006 QUALITY, E007 DEDUP_SCOPE,
E008 positive integers, E009 BACKGROUND_COLOR, E010 IMAGE_SYNC type,
E011 BACKEND, E012 MAX_DECODE_MEMORY, E013 RENDITION_WIDTHS, E014 RENDITION_FORMATS,
E015 FORMAT_OPTIONS, E016 PLACEHOLDER, E017 OUTPUT_STORAGE, W001 unknown key, W002 MAX_DECODE_MEMORY
too small for ordinary photos, W003 a backend of the site's own that makes no renditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.utils.translation import gettext as _
from PIL import features

from . import conf, processing
from .output_checks import ID, check_outputs
from .output_checks import error as _error
from .output_checks import is_positive_int as _is_positive_int
from .output_checks import warning as _warning
from .processing import costs


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "IMAGE_SYNC", None)
    if raw is not None and not isinstance(raw, dict):
        return [
            _error(
                "E010",
                _("IMAGE_SYNC must be a dict."),
                _("Set IMAGE_SYNC = {...} with the keys you want to change, or leave it out."),
            )
        ]
    messages: list[CheckMessage] = []
    values = conf.user_settings()
    for key in sorted(set(values) - set(conf.DEFAULTS)):
        messages.append(
            _warning(
                "W001",
                _("IMAGE_SYNC has an unknown key %(key)s; it is ignored.") % {"key": repr(key)},
                _("Known keys: %(keys)s.") % {"keys": ", ".join(sorted(conf.DEFAULTS))},
            )
        )

    storage_alias = conf.get("STORAGE")
    storages_setting = getattr(settings, "STORAGES", {})
    if storage_alias not in storages_setting:
        messages.append(
            _error(
                "E001",
                _("IMAGE_SYNC['STORAGE'] is %(value)s, which is not a key of STORAGES.")
                % {"value": repr(storage_alias)},
                _("Use one of: %(choices)s.")
                % {"choices": ", ".join(repr(a) for a in storages_setting)},
            )
        )

    output_alias = conf.get("OUTPUT_STORAGE")
    if output_alias is not None and output_alias not in storages_setting:
        messages.append(
            _error(
                "E017",
                _("IMAGE_SYNC['OUTPUT_STORAGE'] is %(value)s, which is not a key of STORAGES.")
                % {"value": repr(output_alias)},
                _("Use one of: %(choices)s, or None for the STORAGE alias.")
                % {"choices": ", ".join(repr(a) for a in storages_setting)},
            )
        )

    cache_alias = conf.get("CACHE")
    if cache_alias not in getattr(settings, "CACHES", {}):
        messages.append(
            _error(
                "E002",
                _("IMAGE_SYNC['CACHE'] is %(value)s, which is not a key of CACHES.")
                % {"value": repr(cache_alias)},
                _("Use one of: %(choices)s.")
                % {"choices": ", ".join(repr(a) for a in settings.CACHES)},
            )
        )

    size = conf.get("TARGET_SIZE")
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(map(_is_positive_int, size))):
        messages.append(
            _error(
                "E003",
                _(
                    "IMAGE_SYNC['TARGET_SIZE'] is %(value)s; it must be (width, height) "
                    "with two positive integers."
                )
                % {"value": repr(size)},
                _("For example %(example)s.") % {"example": "(1920, 1080)"},
            )
        )

    formats = conf.get("ALLOWED_FORMATS")
    if (
        isinstance(formats, str)
        or not isinstance(formats, list | tuple)
        or not formats
        or any(
            not isinstance(f, str) or f.upper() not in conf.SUPPORTED_INPUT_FORMATS for f in formats
        )
    ):
        messages.append(
            _error(
                "E004",
                _(
                    "IMAGE_SYNC['ALLOWED_FORMATS'] is %(value)s; it must be a non-empty "
                    "list drawn from %(choices)s."
                )
                % {"value": repr(formats), "choices": ", ".join(conf.SUPPORTED_INPUT_FORMATS)},
                _("For example %(example)s.") % {"example": '("JPEG", "PNG")'},
            )
        )

    output = conf.get("OUTPUT_FORMAT")
    if not isinstance(output, str) or output.upper() not in conf.OUTPUT_FORMATS:
        messages.append(
            _error(
                "E005",
                _("IMAGE_SYNC['OUTPUT_FORMAT'] is %(value)s; it must be one of %(choices)s.")
                % {"value": repr(output), "choices": ", ".join(conf.OUTPUT_FORMATS)},
                _('"JPEG" suits photos; "PNG" keeps transparency.'),
            )
        )
    elif output.upper() == "WEBP" and not features.check("webp"):
        messages.append(
            _error(
                "E005",
                _("IMAGE_SYNC['OUTPUT_FORMAT'] is 'WEBP' but this Pillow has no WebP support."),
                _("Install a Pillow wheel built with libwebp, or choose JPEG."),
            )
        )

    quality = conf.get("QUALITY")
    if not _is_positive_int(quality) or quality > 100:
        messages.append(
            _error(
                "E006",
                _("IMAGE_SYNC['QUALITY'] is %(value)s; it must be an integer from 1 to 100.")
                % {"value": repr(quality)},
                _("75 to 90 suits the web; above 95 mostly adds bytes."),
            )
        )

    scope = conf.get("DEDUP_SCOPE")
    if scope not in conf.DEDUP_SCOPES:
        messages.append(
            _error(
                "E007",
                _("IMAGE_SYNC['DEDUP_SCOPE'] is %(value)s; it must be 'owner' or 'global'.")
                % {"value": repr(scope)},
                _("'owner' keeps users' images apart; 'global' shares identical content."),
            )
        )

    for key in (
        "MAX_FILES",
        "MAX_FILE_SIZE",
        "MAX_PIXELS",
        "PAGE_SIZE",
        "MAX_ATTEMPTS",
        "MAX_JPEG_SCANS",
        "PROCESSING_TIME_LIMIT",
        "RETRY_HORIZON",
    ):
        value = conf.get(key)
        if not _is_positive_int(value):
            messages.append(
                _error(
                    "E008",
                    _("IMAGE_SYNC[%(key)s] is %(value)s; it must be a positive integer.")
                    % {"key": repr(key), "value": repr(value)},
                    _("The default is %(default)s.") % {"default": repr(conf.DEFAULTS[key])},
                )
            )

    background = conf.get("BACKGROUND_COLOR")
    if not (
        isinstance(background, list | tuple)
        and len(background) == 3
        and all(isinstance(c, int) and 0 <= c <= 255 for c in background)
    ):
        messages.append(
            _error(
                "E009",
                _(
                    "IMAGE_SYNC['BACKGROUND_COLOR'] is %(value)s; it must be an "
                    "(r, g, b) triple of integers from 0 to 255."
                )
                % {"value": repr(background)},
                _("For example (255, 255, 255) for white."),
            )
        )

    backend_messages = _check_backend(conf.get("BACKEND"))
    messages += backend_messages
    messages += check_outputs(None if backend_messages else str(conf.get("BACKEND")))
    if not backend_messages and not any(m.id == ID.format("E003") for m in messages):
        messages += _check_decode_memory(conf.get("MAX_DECODE_MEMORY"))
    return messages


# An ordinary large photo: 24 MP, progressive, 4:2:0, as many cameras and
# phones save them. A budget that refuses it refuses real uploads.
ORDINARY_PHOTO = costs.SourceLayout(
    format="JPEG",
    size=(6000, 4000),
    mode="RGB",
    oriented=True,
    coefficient_bytes=costs.coefficient_bytes((6000, 4000), ((2, 2), (1, 1), (1, 1))),
)


def _check_decode_memory(value: Any) -> list[CheckMessage]:
    if value is None:
        return []
    if not _is_positive_int(value):
        return [
            _error(
                "E012",
                _(
                    "IMAGE_SYNC['MAX_DECODE_MEMORY'] is %(value)s; it must be a positive "
                    "number of bytes, or None for no limit."
                )
                % {"value": repr(value)},
                _("The default is %(default)s.") % {"default": "256 * 1024 * 1024 (256 MB)"},
            )
        ]
    box = tuple(conf.get("TARGET_SIZE"))
    target = processing.fit_within(6000, 4000, (int(box[0]), int(box[1])))
    layout = processing.with_jpeg_decode_size(ORDINARY_PHOTO, target)
    backend = processing.backend_name(str(conf.get("BACKEND")))
    needed = costs.memory_needed(layout, target, backend, conf.extra_format_names())
    if value < needed:
        return [
            _warning(
                "W002",
                _(
                    "IMAGE_SYNC['MAX_DECODE_MEMORY'] is %(value)s; resizing a 24-megapixel "
                    "progressive JPEG photo needs about %(needed)s on the %(backend)s "
                    "backend, so such photos will be refused."
                )
                % {
                    "value": costs.megabytes(value),
                    "needed": costs.megabytes(needed),
                    "backend": backend,
                },
                _("Raise it, or lower MAX_PIXELS so that users are told the real limit."),
            )
        ]
    return []


def _check_backend(backend: Any) -> list[CheckMessage]:
    if not isinstance(backend, str) or not backend:
        return [
            _backend_error(
                _("IMAGE_SYNC['BACKEND'] is %(value)s; it must be one of %(choices)s.")
                % {
                    "value": repr(backend),
                    "choices": ", ".join(repr(b) for b in processing.BACKENDS),
                }
            )
        ]
    name = processing.backend_name(backend)
    if name not in processing.BACKENDS and "." not in name:
        return [
            _backend_error(
                _(
                    "IMAGE_SYNC['BACKEND'] is %(value)s; it must be one of %(choices)s, or "
                    "the dotted path of a module with a resize_image(fileobj, spec) function."
                )
                % {
                    "value": repr(backend),
                    "choices": ", ".join(repr(b) for b in processing.BACKENDS),
                }
            )
        ]
    if name in ("vips", "auto"):
        vips_problem = _vips_problem()
        if vips_problem:
            return [
                _error(
                    "E011",
                    _("IMAGE_SYNC['BACKEND'] is %(value)s but pyvips cannot be used: %(problem)s")
                    % {"value": repr(name), "problem": vips_problem},
                    _(
                        "pip install django-image-sync[vips] (pyvips and pyvips-binary, "
                        "a self-contained libvips)."
                    ),
                )
            ]
    elif name not in processing.BACKENDS:
        try:
            processing.resizer_for(name)
        except Exception as exc:
            return [
                _backend_error(
                    _("IMAGE_SYNC['BACKEND'] is %(value)s, which cannot be used: %(problem)s")
                    % {"value": repr(backend), "problem": f"{type(exc).__name__}: {exc}"}
                )
            ]
    return []


def _backend_error(message: str) -> Error:
    return _error(
        "E011",
        message,
        _("'pillow' needs nothing more; 'vips' is faster on PNG."),
    )


def _vips_problem() -> str | None:
    """Why the libvips backend cannot run in this environment, if it cannot."""
    try:
        # Importing pyvips loads libvips, so a missing shared library shows too.
        import pyvips
    except Exception as exc:
        return str(exc) or type(exc).__name__
    # The backend strips metadata with the savers' "keep" option (libvips 8.15).
    if not pyvips.at_least_libvips(8, 15):
        return _("libvips %(version)s is older than 8.15") % {
            "version": f"{pyvips.version(0)}.{pyvips.version(1)}"
        }
    return None
