"""System checks of the IMAGE_SYNC settings (``django_image_sync.checks``)."""

from __future__ import annotations

import importlib.abc
import io
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from django.core import checks as django_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_image_sync import conf
from django_image_sync.checks import check_settings


def messages_for(**image_sync: object) -> list[django_checks.CheckMessage]:
    with override_settings(IMAGE_SYNC=image_sync):
        return check_settings()


def ids(messages: list[django_checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages]  # type: ignore[misc]


def only(messages: list[django_checks.CheckMessage], check_id: str) -> django_checks.CheckMessage:
    """The one message, which must carry ``check_id``, an error level and a hint."""
    assert ids(messages) == [f"django_image_sync.{check_id}"]
    [message] = messages
    assert message.hint
    expected_level = django_checks.WARNING if check_id.startswith("W") else django_checks.ERROR
    assert message.level == expected_level
    return message


# --- no messages for good settings -----------------------------------------------------


def test_default_settings_produce_no_messages():
    assert check_settings() == []


def test_missing_image_sync_setting_produces_no_messages(settings):
    del settings.IMAGE_SYNC
    assert check_settings() == []


@pytest.mark.parametrize("value", [None, {}])
def test_empty_image_sync_produces_no_messages(value):
    with override_settings(IMAGE_SYNC=value):
        assert check_settings() == []


def test_every_default_written_out_produces_no_messages():
    assert messages_for(**conf.DEFAULTS) == []


def test_valid_non_default_values_produce_no_messages():
    assert (
        messages_for(
            TARGET_SIZE=[800, 600],
            ALLOWED_FORMATS=["jpeg"],
            OUTPUT_FORMAT="png",
            QUALITY=100,
            DEDUP_SCOPE="global",
            MAX_FILES=1,
            MAX_FILE_SIZE=1,
            MAX_PIXELS=1,
            PAGE_SIZE=1,
            MAX_ATTEMPTS=1,
            BACKGROUND_COLOR=[0, 0, 0],
            CACHE="local",
            MAX_JPEG_SCANS=1,
            PROCESSING_TIME_LIMIT=1,
            MAX_DECODE_MEMORY=None,
        )
        == []
    )


def test_check_is_registered_with_django():
    assert check_settings in django_checks.registry.registry.get_checks()


# --- one test per id -------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["nope", "", None, "staticfile"])
def test_e001_storage_alias_not_in_storages(alias):
    message = only(messages_for(STORAGE=alias), "E001")
    assert repr(alias) in message.msg
    assert "'default'" in message.hint  # names the aliases there are


def test_e001_default_storage_missing_from_storages():
    storages = {"media": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    with override_settings(STORAGES=storages):
        message = only(check_settings(), "E001")
    assert "'media'" in message.hint


@pytest.mark.parametrize("alias", ["nope", "", "staticfile"])
def test_e017_output_storage_alias_not_in_storages(alias):
    message = only(messages_for(OUTPUT_STORAGE=alias), "E017")
    assert repr(alias) in message.msg
    assert "'default'" in message.hint


def test_output_storage_none_or_an_alias_of_storages_is_accepted(settings):
    settings.STORAGES = {**settings.STORAGES, "public": settings.STORAGES["default"]}
    for alias in (None, "public", "default"):
        assert not [m for m in messages_for(OUTPUT_STORAGE=alias) if m.id.endswith("E017")]


@pytest.mark.parametrize("alias", ["nope", "", None])
def test_e002_cache_alias_not_in_caches(alias):
    message = only(messages_for(CACHE=alias), "E002")
    assert repr(alias) in message.msg
    assert "'default'" in message.hint
    assert "'local'" in message.hint


def test_e002_default_cache_missing_from_caches():
    caches = {"other": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=caches):
        message = only(check_settings(), "E002")
    assert "'other'" in message.hint


@pytest.mark.parametrize(
    "size",
    [
        (1920,),
        (1920, 1080, 3),
        (0, 1080),
        (1920, -1),
        (1920.0, 1080),
        ("1920", "1080"),
        (True, 1080),
        "1920x1080",
        1920,
        None,
        {1920, 1080},
    ],
)
def test_e003_target_size(size):
    message = only(messages_for(TARGET_SIZE=size), "E003")
    assert "TARGET_SIZE" in message.msg


@pytest.mark.parametrize(
    "formats",
    ["JPEG", (), [], ["GIF"], ["JPEG", "WEBP"], [1], None, ["JPEG", None]],
)
def test_e004_allowed_formats(formats):
    message = only(messages_for(ALLOWED_FORMATS=formats), "E004")
    assert "ALLOWED_FORMATS" in message.msg


@pytest.mark.parametrize("output", ["GIF", "", "JPG", None, 1, ["JPEG"]])
def test_e005_output_format(output):
    message = only(messages_for(OUTPUT_FORMAT=output), "E005")
    assert "OUTPUT_FORMAT" in message.msg


@pytest.mark.parametrize("quality", [0, -5, 101, 85.0, "85", True, None])
def test_e006_quality(quality):
    message = only(messages_for(QUALITY=quality), "E006")
    assert "QUALITY" in message.msg


@pytest.mark.parametrize("scope", ["user", "Owner", "", None, 1])
def test_e007_dedup_scope(scope):
    message = only(messages_for(DEDUP_SCOPE=scope), "E007")
    assert "DEDUP_SCOPE" in message.msg


@pytest.mark.parametrize(
    "key",
    [
        "MAX_FILES",
        "MAX_FILE_SIZE",
        "MAX_PIXELS",
        "PAGE_SIZE",
        "MAX_ATTEMPTS",
        "MAX_JPEG_SCANS",
        "PROCESSING_TIME_LIMIT",
    ],
)
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, None])
def test_e008_positive_integers(key, value):
    message = only(messages_for(**{key: value}), "E008")
    assert key in message.msg
    assert repr(conf.DEFAULTS[key]) in message.hint


def test_e008_reports_each_bad_key():
    messages = messages_for(MAX_FILES=0, PAGE_SIZE=-1)
    assert ids(messages) == ["django_image_sync.E008"] * 2
    assert "MAX_FILES" in messages[0].msg
    assert "PAGE_SIZE" in messages[1].msg


@pytest.mark.parametrize(
    "colour",
    [
        (255, 255),
        (255, 255, 255, 255),
        (256, 0, 0),
        (-1, 0, 0),
        (1.0, 0, 0),
        "white",
        "#ffffff",
        None,
    ],
)
def test_e009_background_color(colour):
    message = only(messages_for(BACKGROUND_COLOR=colour), "E009")
    assert "BACKGROUND_COLOR" in message.msg


@pytest.mark.parametrize("value", [["TARGET_SIZE"], "JPEG", 1, ("QUALITY", 85), []])
def test_e010_image_sync_not_a_dict(value):
    with override_settings(IMAGE_SYNC=value):
        only(check_settings(), "E010")


@pytest.mark.parametrize("key", ["TARGT_SIZE", "quality", "STORAGES"])
def test_w001_unknown_key(key):
    message = only(messages_for(**{key: 1}), "W001")
    assert repr(key) in message.msg
    assert "TARGET_SIZE" in message.hint  # lists the known keys


def test_w001_lists_every_unknown_key_once():
    messages = messages_for(ZZZ=1, AAA=2, QUALITY=90)
    assert ids(messages) == ["django_image_sync.W001"] * 2
    assert "'AAA'" in messages[0].msg
    assert "'ZZZ'" in messages[1].msg


def test_several_problems_are_all_reported():
    messages = messages_for(QUALITY=0, DEDUP_SCOPE="x", TARGET_SIZE=None, TYPO=1)
    assert sorted(ids(messages)) == [
        "django_image_sync.E003",
        "django_image_sync.E006",
        "django_image_sync.E007",
        "django_image_sync.W001",
    ]


# --- through manage.py check -----------------------------------------------------------


def test_manage_py_check_fails_on_a_bad_setting():
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        override_settings(IMAGE_SYNC={"QUALITY": 0}),
        pytest.raises(SystemCheckError) as caught,
    ):
        call_command("check", stdout=stdout, stderr=stderr)
    assert "django_image_sync.E006" in str(caught.value)
    assert "QUALITY" in str(caught.value)


def test_a_missing_storage_alias_is_a_check_error_not_a_start_up_crash():
    """The alias is resolved at use: Django starts, and ``check`` names the mistake."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "IMAGE_SYNC_TEST_STORAGE_ALIAS": "no-such-alias",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "django_image_sync.E001" in result.stderr
    assert "'no-such-alias', which is not a key of STORAGES" in result.stderr
    assert "Traceback" not in result.stderr


def test_manage_py_check_passes_with_good_settings():
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("check", stdout=stdout, stderr=stderr)
    assert "django_image_sync" not in stdout.getvalue() + stderr.getvalue()


def test_manage_py_check_shows_warning_without_failing():
    stdout, stderr = io.StringIO(), io.StringIO()
    with override_settings(IMAGE_SYNC={"TARGT_SIZE": (1, 1)}):
        call_command("check", stdout=stdout, stderr=stderr)
    assert "django_image_sync.W001" in stdout.getvalue() + stderr.getvalue()


# --- E011 BACKEND (the optional libvips backend) ---------------------------------------


class _NoLibvips(importlib.abc.MetaPathFinder):
    """Makes ``import pyvips`` fail the way it does when libvips itself is missing."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pyvips":
            raise OSError("cannot load library 'libvips.so.42': no such file")


@pytest.mark.parametrize("backend", ["pillow", "Pillow"])
def test_pillow_backend_produces_no_messages(backend):
    assert messages_for(BACKEND=backend) == []


@pytest.mark.parametrize("backend", ["vips", "auto"])
def test_vips_backend_produces_no_messages_where_pyvips_works(backend):
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.skip(f"pyvips cannot be loaded here: {exc}")
    assert messages_for(BACKEND=backend) == []


@pytest.mark.parametrize("backend", ["magick", "", None, 1, ["vips"]])
def test_e011_unknown_backend(backend):
    message = only(messages_for(BACKEND=backend), "E011")
    assert repr(backend) in message.msg
    assert "'pillow', 'vips', 'auto'" in message.msg


@pytest.mark.parametrize("backend", ["vips", "auto"])
def test_e011_vips_backend_without_pyvips(monkeypatch, backend):
    monkeypatch.setitem(sys.modules, "pyvips", None)  # as without the extra: ImportError
    message = only(messages_for(BACKEND=backend), "E011")
    assert f"IMAGE_SYNC['BACKEND'] is '{backend}' but pyvips cannot be used" in message.msg
    assert "pip install django-image-sync[vips]" in message.hint


def test_e011_vips_backend_without_libvips(monkeypatch):
    monkeypatch.delitem(sys.modules, "pyvips", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoLibvips(), *sys.meta_path])
    message = only(messages_for(BACKEND="vips"), "E011")
    assert "libvips.so.42" in message.msg
    assert "pip install django-image-sync[vips]" in message.hint


def test_e011_vips_backend_with_a_libvips_too_old_to_strip_metadata(monkeypatch):
    old = types.ModuleType("pyvips")
    old.at_least_libvips = lambda major, minor: (major, minor) <= (8, 14)  # type: ignore[attr-defined]
    old.version = lambda part: (8, 14, 5)[part]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyvips", old)
    message = only(messages_for(BACKEND="vips"), "E011")
    assert "libvips 8.14 is older than 8.15" in message.msg


# --- MAX_DECODE_MEMORY ----------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, "256 MB", True])
def test_e012_max_decode_memory(value):
    message = only(messages_for(MAX_DECODE_MEMORY=value), "E012")
    assert "MAX_DECODE_MEMORY" in message.msg
    assert "None for no limit" in message.msg


@pytest.mark.parametrize(
    ("backend", "budget", "needed"),
    # "auto": Pillow's decode at 3/8, then libvips' resize and output.
    [("pillow", 118, "about 120 MB"), ("vips", 100, "about 121 MB"), ("auto", 140, "about 143 MB")],
)
def test_w002_budget_that_refuses_ordinary_24_megapixel_photos(backend, budget, needed):
    message = only(messages_for(MAX_DECODE_MEMORY=budget * 1024 * 1024, BACKEND=backend), "W002")
    assert message.msg == (
        f"IMAGE_SYNC['MAX_DECODE_MEMORY'] is {budget} MB; resizing a 24-megapixel progressive "
        f"JPEG photo needs {needed} on the {backend} backend, so such photos will be refused."
    )


def test_w002_is_not_raised_for_a_budget_that_fits_such_photos():
    assert messages_for(MAX_DECODE_MEMORY=160 * 1024 * 1024) == []


def test_w002_follows_the_target_size():
    """A larger target means a larger reduced decode of the same photo."""
    assert messages_for(MAX_DECODE_MEMORY=140 * 1024 * 1024) == []
    assert ids(messages_for(MAX_DECODE_MEMORY=140 * 1024 * 1024, TARGET_SIZE=(6000, 4000))) == [
        "django_image_sync.W002"
    ]


# -- the output settings (renditions, formats, placeholder) ----------------------------


@pytest.mark.parametrize("widths", [[0], (480, "960"), "480", [480.0], None, [-1], [True]])
def test_e013_rendition_widths(widths):
    message = only(messages_for(RENDITION_WIDTHS=widths), "E013")
    assert "RENDITION_WIDTHS" in message.msg


@pytest.mark.parametrize("formats", [["GIF"], "AVIF", None, [1], ["AVIF", "TIFF"]])
def test_e014_rendition_formats_not_known(formats):
    message = only(messages_for(RENDITION_FORMATS=formats), "E014")
    assert "RENDITION_FORMATS" in message.msg


def test_e014_a_format_this_pillow_cannot_write(monkeypatch):
    from django_image_sync import output_checks

    real = output_checks.features.check
    monkeypatch.setattr(output_checks.features, "check", lambda name: name != "avif" and real(name))
    message = only(messages_for(), "E014")
    assert "needs AVIF output, which the pillow backend cannot write here" in message.msg
    assert "RENDITION_FORMATS" in message.hint
    # Without AVIF in the list, nothing to report.
    assert messages_for(RENDITION_FORMATS=("WEBP",)) == []


def test_e014_the_placeholder_needs_webp(monkeypatch):
    from django_image_sync import output_checks

    monkeypatch.setattr(output_checks.features, "check", lambda name: name != "webp")
    message = only(messages_for(RENDITION_FORMATS=()), "E014")
    assert "IMAGE_SYNC['PLACEHOLDER'] needs WEBP output" in message.msg
    assert messages_for(RENDITION_FORMATS=(), PLACEHOLDER=False) == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"AVIF": {"quality": 101}}, "AVIF quality must be an integer from 0 to 100"),
        ({"AVIF": {"speed": 11}}, "AVIF speed must be an integer from 0 to 10"),
        ({"WEBP": {"speed": 3}}, "WEBP takes quality, method, not 'speed'"),
        ({"WEBP": {"method": "4"}}, "WEBP method must be an integer from 0 to 6"),
        ({"GIF": {"quality": 5}}, "'GIF' is not one of"),
        ({"AVIF": 70}, "'AVIF' is not one of"),
        ([("AVIF", {})], "it must be a dict of dicts"),
    ],
)
def test_e015_format_options(options, problem):
    message = only(messages_for(FORMAT_OPTIONS=options), "E015")
    assert problem in message.msg


@pytest.mark.parametrize("output", ["JPEG", "WEBP"])
def test_e015_options_for_the_main_format_would_be_ignored(output):
    message = only(
        messages_for(OUTPUT_FORMAT=output, FORMAT_OPTIONS={output.lower(): {"quality": 60}}),
        "E015",
    )
    assert f"options for {output}, the OUTPUT_FORMAT" in message.msg
    assert "QUALITY" in message.hint


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_e016_placeholder(value):
    message = only(messages_for(PLACEHOLDER=value), "E016")
    assert "True or False" in message.msg


def test_valid_output_settings_produce_no_messages():
    assert (
        messages_for(
            RENDITION_WIDTHS=[320, 640],
            RENDITION_FORMATS=["webp", "PNG"],
            FORMAT_OPTIONS={"AVIF": {"quality": 50}, "webp": {"method": 6}},
            PLACEHOLDER=False,
        )
        == []
    )
    assert messages_for(RENDITION_WIDTHS=(), RENDITION_FORMATS=(), PLACEHOLDER=False) == []


def test_w003_a_backend_of_the_sites_own_without_render():
    messages = messages_for(BACKEND="tests.support.resize_only_backend")
    assert ids(messages) == ["django_image_sync.W003"]
    assert "makes the main output only" in messages[0].msg
    bare = {"RENDITION_WIDTHS": (), "RENDITION_FORMATS": (), "PLACEHOLDER": False}
    assert messages_for(BACKEND="tests.support.resize_only_backend", **bare) == []


def test_e014_a_format_libvips_cannot_save(monkeypatch):
    pyvips = pytest.importorskip("pyvips")
    monkeypatch.setattr(pyvips, "get_suffixes", lambda: [".jpg", ".png", ".avif"])
    message = only(messages_for(BACKEND="vips"), "E014")
    assert "needs WEBP output, which the vips backend cannot write here" in message.msg
    assert "this libvips has no WEBP saver" in message.msg


def test_e014_avif_on_the_vips_backend_needs_pillows_encoder(monkeypatch):
    pytest.importorskip("pyvips")
    from django_image_sync import output_checks

    real = output_checks.features.check
    monkeypatch.setattr(output_checks.features, "check", lambda name: name != "avif" and real(name))
    message = only(messages_for(BACKEND="vips"), "E014")
    assert "needs AVIF output, which the vips backend cannot write here" in message.msg
