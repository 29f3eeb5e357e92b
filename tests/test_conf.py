"""Settings access in ``django_image_sync.conf``: defaults, overrides, unknown names."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_image_sync import conf

MiB = 1024 * 1024

# The defaults as the comments in conf.DEFAULTS document them.
DOCUMENTED = {
    "TARGET_SIZE": (1920, 1080),
    "MAX_FILES": 2,
    "MAX_FILE_SIZE": 5 * MiB,
    "MAX_PIXELS": 50_000_000,
    "ALLOWED_FORMATS": ("JPEG", "PNG"),
    "STORAGE": "default",
    "OUTPUT_STORAGE": None,
    "CACHE": "default",
    "CACHE_TIMEOUT": 60 * 60 * 24 * 30,
    "REQUIRE_AUTH": True,
    "DEDUP_SCOPE": "owner",
    "OUTPUT_FORMAT": "JPEG",
    "QUALITY": 85,
    "BACKGROUND_COLOR": (255, 255, 255),
    "UPLOAD_TO": "image_sync",
    "PAGE_SIZE": 24,
    "MAX_ATTEMPTS": 5,
    "BACKEND": "pillow",
    "MAX_DECODE_MEMORY": 256 * MiB,
    "MAX_JPEG_SCANS": 100,
    "PROCESSING_TIME_LIMIT": 120,
    "RETRY_HORIZON": 86400,
    "RENDITION_WIDTHS": (480, 960, 1440),
    "RENDITION_FORMATS": ("AVIF", "WEBP"),
    "FORMAT_OPTIONS": {},
    "PLACEHOLDER": True,
}


def test_defaults_are_the_documented_values():
    assert conf.DEFAULTS == DOCUMENTED


def test_defaults_returned_when_image_sync_is_unset(settings):
    del settings.IMAGE_SYNC

    assert conf.user_settings() == {}
    for name, value in DOCUMENTED.items():
        assert conf.get(name) == value
        assert getattr(conf.settings, name) == value


@pytest.mark.parametrize("empty", [None, {}])
def test_defaults_returned_when_image_sync_is_empty(empty):
    with override_settings(IMAGE_SYNC=empty):
        assert conf.user_settings() == {}
        assert {name: conf.get(name) for name in DOCUMENTED} == DOCUMENTED


def test_override_is_read_at_access_time():
    holder = conf.settings  # taken before the override: nothing is cached at import
    assert holder.QUALITY == 85

    with override_settings(IMAGE_SYNC={"QUALITY": 60, "TARGET_SIZE": (800, 600)}):
        assert holder.QUALITY == 60
        assert conf.get("QUALITY") == 60
        assert holder.TARGET_SIZE == (800, 600)
        assert holder.MAX_FILES == 2  # others keep their default
        with override_settings(IMAGE_SYNC={"QUALITY": 40}):
            assert holder.QUALITY == 40
            assert holder.TARGET_SIZE == (1920, 1080)
        assert holder.QUALITY == 60

    assert holder.QUALITY == 85
    assert conf.get("TARGET_SIZE") == (1920, 1080)


def test_settings_fixture_assignment_is_seen(settings):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global", "REQUIRE_AUTH": False}
    assert conf.settings.DEDUP_SCOPE == "global"
    assert conf.get("REQUIRE_AUTH") is False


def test_falsy_overrides_are_not_replaced_by_defaults():
    values = {"REQUIRE_AUTH": False, "CACHE_TIMEOUT": None, "UPLOAD_TO": "", "MAX_FILES": 0}
    with override_settings(IMAGE_SYNC=values):
        for name, value in values.items():
            assert conf.get(name) == value
            assert getattr(conf.settings, name) == value


def test_user_settings_is_a_copy():
    with override_settings(IMAGE_SYNC={"QUALITY": 70}):
        conf.user_settings()["QUALITY"] = 10
        assert conf.get("QUALITY") == 70


@pytest.mark.parametrize("name", ["NOPE", "quality", "TARGET_SIZES", ""])
def test_unknown_names_raise_attribute_error(name):
    with pytest.raises(AttributeError, match=name or "setting"):
        conf.get(name)
    with pytest.raises(AttributeError):
        getattr(conf.settings, name)


def test_unknown_name_raises_even_when_present_in_image_sync():
    with override_settings(IMAGE_SYNC={"NOPE": 1}):
        with pytest.raises(AttributeError, match="NOPE"):
            conf.get("NOPE")
        assert not hasattr(conf.settings, "NOPE")
        assert getattr(conf.settings, "NOPE", "fallback") == "fallback"


def test_dir_lists_the_known_names():
    assert set(dir(conf.settings)) == set(DOCUMENTED)


@pytest.mark.parametrize("value", [["QUALITY", 50], "QUALITY=50", 1])
def test_non_dict_image_sync_falls_back_to_defaults(value):
    # Reported by check E010; reading settings must not crash meanwhile.
    with override_settings(IMAGE_SYNC=value):
        assert conf.user_settings() == {}
        assert conf.get("QUALITY") == 85


def test_output_plan_follows_the_rendition_settings(settings):
    plan = conf.output_plan()
    assert plan.widths == (480, 960, 1440)
    assert [e.format for e in plan.formats] == ["AVIF", "WEBP"]
    assert dict(plan.formats[0].options) == conf.FORMAT_OPTION_DEFAULTS["AVIF"]
    assert plan.placeholder is True

    settings.IMAGE_SYNC = {
        "RENDITION_WIDTHS": [800],
        "RENDITION_FORMATS": ["webp"],
        "FORMAT_OPTIONS": {"WEBP": {"quality": 70}},
        "PLACEHOLDER": False,
    }
    changed = conf.output_plan()
    assert (changed.widths, changed.placeholder) == ((800,), False)
    assert dict(changed.formats[0].options) == {"quality": 70, "method": 2}
    assert changed.key != plan.key
    assert changed.main.key == plan.main.key  # the main output keeps its name

    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": (), "RENDITION_FORMATS": (), "PLACEHOLDER": False}
    bare = conf.output_plan()
    assert [o.format for o in bare.outputs((1920, 1080))] == ["JPEG"]
