"""Sentences for people made from codes and figures, in the active language.

The processing layer and the worker record what went wrong as a code and its
figures (``ImageProblem.code`` / ``.params``, ``UploadedImage.error_code`` /
``.error_params``), with an English message for logs; these functions word
them for whoever reads them now, with sizes in KB/MB and pixels in megapixels.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.text import get_text_list
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import processing


def problem_message(problem: processing.ImageProblem) -> str:
    """What ``problem`` says, in the active language, with sizes in human units.

    ``problem.message`` is the English of the processing layer, for logs; this
    is its counterpart for people, made from ``problem.code`` and
    ``problem.params``. A code it does not know keeps ``problem.message``.
    """
    params = problem.params
    code = problem.code
    if code == "empty":
        return _("the file is empty")
    if code == "max_file_size" and {"size", "limit"} <= params.keys():
        size, limit = filesizeformat(params["size"]), filesizeformat(params["limit"])
        if size == limit:  # e.g. one byte over: both read "5.0 MB"
            return _("the file is slightly larger than the limit of %(limit)s") % {"limit": limit}
        return _("the file is %(size)s; the limit is %(limit)s") % {"size": size, "limit": limit}
    if code == "format" and "allowed" in params:
        allowed = format_names(params["allowed"])
        if params.get("found"):
            return _("it looks like %(found)s; allowed formats are %(allowed)s") % {
                "found": params["found"],
                "allowed": allowed,
            }
        return _("its content is not an image; allowed formats are %(allowed)s") % {
            "allowed": allowed
        }
    if code == "max_pixels" and params.get("limit"):
        return _pixels_message(params)
    if code == "max_jpeg_scans" and {"scans", "limit"} <= params.keys():
        values = {
            "scans": number_format(params["scans"], force_grouping=True),
            "limit": number_format(params["limit"], force_grouping=True),
        }
        if params.get("progressive"):
            return (
                ngettext(
                    "the image is a progressive JPEG with %(scans)s scans; "
                    "at most %(limit)s is accepted",
                    "the image is a progressive JPEG with %(scans)s scans; "
                    "at most %(limit)s are accepted",
                    params["limit"],
                )
                % values
            )
        return (
            ngettext(
                "the image is a JPEG with %(scans)s scans; at most %(limit)s is accepted",
                "the image is a JPEG with %(scans)s scans; at most %(limit)s are accepted",
                params["limit"],
            )
            % values
        )
    if code == "max_decode_memory" and {"memory", "limit", "width", "height"} <= params.keys():
        return _(
            "the image needs about %(memory)s of memory to resize "
            "(%(width)s×%(height)s %(format)s); the limit is %(limit)s"  # noqa: RUF001
        ) % {
            "memory": filesizeformat(params["memory"]),
            "limit": filesizeformat(params["limit"]),
            "width": params["width"],
            "height": params["height"],
            "format": params.get("format", ""),
        }
    if code == "corrupt":
        return _corrupt_message(params)
    return problem.message


def _pixels_message(params: dict[str, Any]) -> str:
    limit = megapixels(params["limit"])
    if params.get("pixels") is None:
        return _("the image is too large; the limit is %(limit)s megapixels") % {"limit": limit}
    value, limit_value = params["pixels"] / 1e6, params["limit"] / 1e6
    shown_limit = round(limit_value, _natural_decimals(limit_value))
    decimals = _natural_decimals(value)
    while round(value, decimals) <= shown_limit and decimals < 6:  # just over: say by how much
        decimals += 1
    pixels = megapixels(params["pixels"], decimals)
    values = {
        "pixels": pixels,
        "limit": limit,
        "width": params.get("width"),
        "height": params.get("height"),
        "frames": number_format(params.get("frames") or 1),
    }
    if not params.get("width") or not params.get("height"):
        return _("the image has %(pixels)s megapixels; the limit is %(limit)s megapixels") % values
    frames = params.get("frames") or 1
    if frames == 1:
        return (
            _(
                "the image has %(pixels)s megapixels (%(width)s×%(height)s); "  # noqa: RUF001
                "the limit is %(limit)s megapixels"
            )
            % values
        )
    return (
        ngettext(
            "the image has %(pixels)s megapixels (%(width)s×%(height)s in %(frames)s frame); "  # noqa: RUF001
            "the limit is %(limit)s megapixels",
            "the image has %(pixels)s megapixels (%(width)s×%(height)s in %(frames)s frames); "  # noqa: RUF001
            "the limit is %(limit)s megapixels",
            frames,
        )
        % values
    )


def _corrupt_message(params: dict[str, Any]) -> str:
    reason = params.get("reason")
    if reason == "header" and params.get("format"):
        return _("the %(format)s header is damaged or cut off") % {"format": params["format"]}
    if reason == "truncated":
        return _("the file is cut off: the image data ends too early")
    if reason == "no_image_data":
        return _("the file contains no image data")
    if reason == "bit_depth" and params.get("bits"):
        return _("the JPEG has %(bits)s-bit samples; only 8-bit JPEGs can be read") % {
            "bits": params["bits"]
        }
    return _("the image is damaged and cannot be read")


def megapixels(pixels: int, decimals: int | None = None) -> str:
    """A pixel count as megapixels in the active locale's number format: whole
    from 10 MP, one decimal from 1 MP, two significant digits below (or ``decimals``)."""
    value = pixels / 1e6
    if decimals is None:
        decimals = _natural_decimals(value)
    # number_format cuts off what is past decimal_pos: round first.
    return number_format(round(value, decimals), decimal_pos=decimals, force_grouping=True)


def _natural_decimals(value: float) -> int:
    if value >= 10:
        return 0
    if value >= 1:
        return 1
    return 1 - math.floor(math.log10(max(value, 1e-6)))


# Codes of ImageProblem that the worker records as an image's failure.
PROBLEM_CODES = frozenset(
    {"max_decode_memory", "max_jpeg_scans", "max_pixels", "max_file_size", "format", "corrupt"}
)


def format_names(names: Any) -> str:
    """Format names as a list in the active language: "JPEG and PNG"."""
    return get_text_list([str(name).upper() for name in names], _("and"))


def failure_message(code: str, params: dict[str, Any], fallback: str) -> str:
    """Why an image failed in the worker, from ``error_code`` and ``error_params``.

    ``fallback`` (the stored English ``error``) is used for a code this
    version does not know, such as one recorded before codes were.
    """
    if code in PROBLEM_CODES:
        figures = {k: v for k, v in params.items() if k != "file"}
        problem = processing.ImageProblem(code, fallback, **figures)
        text = problem_message(problem)
        if params.get("file"):
            return _("%(file)s: %(problem)s") % {"file": params["file"], "problem": text}
        return text
    if code == "attempts" and "count" in params:
        return ngettext(
            "gave up after %(count)s attempt", "gave up after %(count)s attempts", params["count"]
        ) % {"count": number_format(params["count"])}
    if code == "retries" and "count" in params:
        return ngettext(
            "gave up after %(count)s try: %(detail)s",
            "gave up after %(count)s tries: %(detail)s",
            params["count"],
        ) % {"count": number_format(params["count"]), "detail": params.get("detail", "")}
    if code == "retrying":
        return _("trying again automatically after a temporary failure: %(detail)s") % {
            "detail": params.get("detail", "")
        }
    if code == "horizon" and "seconds" in params:
        return _("gave up after trying for %(duration)s: %(detail)s") % {
            "duration": duration(params["seconds"]),
            "detail": params.get("detail", ""),
        }
    if code == "time_limit" and "seconds" in params:
        return _(
            "resizing took longer than %(seconds)s s, the limit for one image (%(setting)s); "
            "the file costs more to decode than any photo should"
        ) % {"seconds": number_format(params["seconds"]), "setting": params.get("setting", "")}
    if code == "unprocessable":
        return _("the image cannot be processed: %(detail)s") % {"detail": params.get("detail", "")}
    return fallback


def duration(seconds: float) -> str:
    """A span of time as Django's ``timesince`` words it ("1 day, 2 hours")."""
    now = timezone.now()
    return timesince(now - timedelta(seconds=float(seconds)), now)
