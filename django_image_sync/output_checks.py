"""System checks of the output settings (RENDITION_WIDTHS, RENDITION_FORMATS,
FORMAT_OPTIONS, PLACEHOLDER), and the helpers every check message is built with.
``checks`` registers them; the ids are listed there."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.utils.translation import gettext as _
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
                _(
                    "IMAGE_SYNC['RENDITION_WIDTHS'] is %(value)s; it must be a list of "
                    "positive integers (pixels), or () for none."
                )
                % {"value": repr(widths)},
                _("For example %(example)s.") % {"example": "(480, 960, 1440)"},
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
                _(
                    "IMAGE_SYNC['RENDITION_FORMATS'] is %(value)s; it must be a list drawn "
                    "from %(choices)s, or () for none."
                )
                % {"value": repr(formats), "choices": ", ".join(conf.RENDITION_FORMATS)},
                _("For example %(example)s.") % {"example": '("AVIF", "WEBP")'},
            )
        )
    else:
        names = [f.upper() for f in formats]
    placeholder = conf.get("PLACEHOLDER")
    if not isinstance(placeholder, bool):
        messages.append(
            error(
                "E016",
                _("IMAGE_SYNC['PLACEHOLDER'] is %(value)s; it must be True or False.")
                % {"value": repr(placeholder)},
                _("The default is %(default)s.") % {"default": "True"},
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
                _(
                    "IMAGE_SYNC['FORMAT_OPTIONS'] has options for %(format)s, the "
                    "OUTPUT_FORMAT: they would be ignored."
                )
                % {"format": main_format},
                _(
                    "The main format's encoder takes QUALITY; FORMAT_OPTIONS is for the "
                    "formats of RENDITION_FORMATS."
                ),
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
                    _(
                        "IMAGE_SYNC[%(setting)s] needs %(format)s output, which the "
                        "%(backend)s backend cannot write here: %(problem)s"
                    )
                    % {
                        "setting": repr(needs),
                        "format": format_name,
                        "backend": name,
                        "problem": problem,
                    },
                    _(
                        "Install a Pillow (or libvips) built with %(format)s support, or leave "
                        "%(format)s out of RENDITION_FORMATS (PLACEHOLDER needs WebP)."
                    )
                    % {"format": format_name},
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
                    _(
                        "IMAGE_SYNC['BACKEND'] %(value)s has no render() function, so it "
                        "makes the main output only: no renditions and no placeholder."
                    )
                    % {"value": repr(backend)},
                    _(
                        "Add render(fileobj, plan, skip) to the module (see docs/settings.md), "
                        "or set RENDITION_WIDTHS = (), RENDITION_FORMATS = () and "
                        "PLACEHOLDER = False."
                    ),
                )
            )
    return messages


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _check_format_options(options: Any) -> list[CheckMessage]:
    problems = []
    if not isinstance(options, dict):
        problems.append(_("it must be a dict of dicts"))
    else:
        for format_name, chosen in options.items():
            ranges = conf.FORMAT_OPTION_RANGES.get(str(format_name).upper())
            if ranges is None or not isinstance(chosen, dict):
                problems.append(
                    _("%(format)s is not one of %(choices)s with a dict")
                    % {
                        "format": repr(format_name),
                        "choices": ", ".join(conf.FORMAT_OPTION_RANGES),
                    }
                )
                continue
            for option, value in chosen.items():
                bounds = ranges.get(option)
                if bounds is None:
                    problems.append(
                        _("%(format)s takes %(options)s, not %(option)s")
                        % {
                            "format": format_name,
                            "options": ", ".join(ranges) or _("no options"),
                            "option": repr(option),
                        }
                    )
                elif (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not bounds[0] <= value <= bounds[1]
                ):
                    problems.append(
                        _("%(format)s %(option)s must be an integer from %(low)s to %(high)s")
                        % {
                            "format": format_name,
                            "option": option,
                            "low": bounds[0],
                            "high": bounds[1],
                        }
                    )
    if not problems:
        return []
    return [
        error(
            "E015",
            _("IMAGE_SYNC['FORMAT_OPTIONS'] is %(value)s: %(problems)s.")
            % {"value": repr(options), "problems": "; ".join(problems)},
            _("For example %(example)s.")
            % {"example": '{"AVIF": {"quality": 70}, "WEBP": {"method": 4}}'},
        )
    ]


def _cannot_write(backend: str, format_name: str) -> str | None:
    """Why ``backend`` cannot write ``format_name`` here, if it cannot."""
    if backend == "auto":
        # Either backend may make a file's outputs: both must be able to.
        return _cannot_write("pillow", format_name) or _cannot_write("vips", format_name)
    feature = {"AVIF": "avif", "WEBP": "webp"}.get(format_name)
    # AVIF goes through Pillow's encoder on both backends (see backends/vips.py).
    on_pillow = backend == "pillow" or format_name == "AVIF"
    if on_pillow and feature and not features.check(feature):
        return _("this Pillow has no %(format)s encoder") % {"format": format_name}
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
            return _("this libvips has no %(format)s saver") % {"format": format_name}
    return None
