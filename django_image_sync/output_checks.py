"""System checks of the output settings (RENDITION_WIDTHS, RENDITION_FORMATS,
FORMAT_OPTIONS, PLACEHOLDER), and the helpers every check message is built with.
``checks`` registers them; the ids are listed there."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from PIL import features

from . import conf, processing

ID = "django_image_sync.{}"


def error(check_id: str, message: str, hint: str) -> Error:
    return Error(message, hint=hint, id=ID.format(check_id))


def warning(check_id: str, message: str, hint: str) -> Warning:
    return Warning(message, hint=hint, id=ID.format(check_id))


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_outputs(backend: str | None) -> list[CheckMessage]:
    """RENDITION_WIDTHS, RENDITION_FORMATS, FORMAT_OPTIONS and PLACEHOLDER, and
    whether ``backend`` (None: unusable, reported already) can write the formats."""
    messages: list[CheckMessage] = []
    widths = conf.get("RENDITION_WIDTHS")
    if not _is_sequence(widths) or not all(map(is_positive_int, widths)):
        messages.append(
            error(
                "E013",
                f"IMAGE_SYNC['RENDITION_WIDTHS'] is {widths!r}; it must be a list of "
                "positive integers (pixels), or () for none.",
                "For example (480, 960, 1440).",
            )
        )
    formats = conf.get("RENDITION_FORMATS")
    names: list[str] = []
    if not _is_sequence(formats) or not all(
        isinstance(f, str) and f.upper() in conf.RENDITION_FORMATS for f in formats
    ):
        messages.append(
            error(
                "E014",
                f"IMAGE_SYNC['RENDITION_FORMATS'] is {formats!r}; it must be a list drawn "
                f"from {', '.join(conf.RENDITION_FORMATS)}, or () for none.",
                'For example ("AVIF", "WEBP").',
            )
        )
    else:
        names = [f.upper() for f in formats]
    placeholder = conf.get("PLACEHOLDER")
    if not isinstance(placeholder, bool):
        messages.append(
            error(
                "E016",
                f"IMAGE_SYNC['PLACEHOLDER'] is {placeholder!r}; it must be True or False.",
                "The default is True.",
            )
        )
    elif placeholder and "WEBP" not in names:
        names.append("WEBP")  # the placeholder is a WebP image
    messages += _check_format_options(conf.get("FORMAT_OPTIONS"))
    main_format = str(conf.get("OUTPUT_FORMAT")).upper()
    site_options = conf.get("FORMAT_OPTIONS")
    if isinstance(site_options, dict) and main_format in {str(k).upper() for k in site_options}:
        messages.append(
            error(
                "E015",
                f"IMAGE_SYNC['FORMAT_OPTIONS'] has options for {main_format}, the "
                "OUTPUT_FORMAT: they would be ignored.",
                "The main format's encoder takes QUALITY; FORMAT_OPTIONS is for the "
                "formats of RENDITION_FORMATS.",
            )
        )
    if backend is None:
        return messages
    name = processing.backend_name(backend)
    for format_name in dict.fromkeys(names):
        problem = _cannot_write(name, format_name)
        if problem:
            needs = (
                "PLACEHOLDER"
                if format_name not in [f.upper() for f in formats or ()]
                else "RENDITION_FORMATS"
            )
            messages.append(
                error(
                    "E014",
                    f"IMAGE_SYNC[{needs!r}] needs {format_name} output, which the {name} "
                    f"backend cannot write here: {problem}",
                    f"Install a Pillow (or libvips) built with {format_name} support, or "
                    f"leave {format_name} out of RENDITION_FORMATS (PLACEHOLDER needs WebP).",
                )
            )
    wants_more = bool(widths) or bool(formats) or placeholder is True
    if name not in processing.BACKENDS and wants_more:
        try:
            renders = processing.renderer_for(name) is not None
        except Exception:
            renders = True  # E011 reports it
        if not renders:
            messages.append(
                warning(
                    "W003",
                    f"IMAGE_SYNC['BACKEND'] {backend!r} has no render() function, so it "
                    "makes the main output only: no renditions and no placeholder.",
                    "Add render(fileobj, plan, skip) to the module (see docs/settings.md), or "
                    "set RENDITION_WIDTHS = (), RENDITION_FORMATS = () and PLACEHOLDER = False.",
                )
            )
    return messages


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _check_format_options(options: Any) -> list[CheckMessage]:
    problems = []
    if not isinstance(options, dict):
        problems.append("it must be a dict of dicts")
    else:
        for format_name, chosen in options.items():
            ranges = conf.FORMAT_OPTION_RANGES.get(str(format_name).upper())
            if ranges is None or not isinstance(chosen, dict):
                problems.append(
                    f"{format_name!r} is not one of "
                    f"{', '.join(conf.FORMAT_OPTION_RANGES)} with a dict"
                )
                continue
            for option, value in chosen.items():
                bounds = ranges.get(option)
                if bounds is None:
                    problems.append(
                        f"{format_name} takes {', '.join(ranges) or 'no options'}, not {option!r}"
                    )
                elif (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not bounds[0] <= value <= bounds[1]
                ):
                    problems.append(
                        f"{format_name} {option} must be an integer from {bounds[0]} to {bounds[1]}"
                    )
    if not problems:
        return []
    return [
        error(
            "E015",
            f"IMAGE_SYNC['FORMAT_OPTIONS'] is {options!r}: {'; '.join(problems)}.",
            'For example {"AVIF": {"quality": 70}, "WEBP": {"method": 4}}.',
        )
    ]


def _cannot_write(backend: str, format_name: str) -> str | None:
    """Why ``backend`` cannot write ``format_name`` here, if it cannot."""
    feature = {"AVIF": "avif", "WEBP": "webp"}.get(format_name)
    # AVIF goes through Pillow's encoder on both backends (see backends/vips.py).
    on_pillow = backend == "pillow" or format_name == "AVIF"
    if on_pillow and feature and not features.check(feature):
        return f"this Pillow has no {format_name} encoder"
    if backend == "vips" and feature and not on_pillow:
        # Only what libvips says it can save: running an operation here would
        # start libvips' threads in the process a Celery worker forks its pool
        # from (Celery runs the checks there), and a forked pool process would
        # then hang in libvips.
        try:
            import pyvips

            suffixes = set(pyvips.get_suffixes())
        except Exception as exc:
            return str(exc) or type(exc).__name__
        if f".{feature}" not in suffixes:
            return f"this libvips has no {format_name} saver"
    return None
