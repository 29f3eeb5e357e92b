"""``django_image_sync.results``: what a resize produced, remembered in the real Redis
cache and in "done" twin rows, and forgotten when its file goes."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time

import pytest
from django.test import override_settings

from django_image_sync import conf, processing, results
from django_image_sync.models import Status, UploadedImage, original_name, resized_name
from tests.support.processes import free_port

SHA = hashlib.sha256(b"results").hexdigest()


@pytest.fixture
def key(clear_cache) -> str:
    return results.result_cache_key(SHA, conf.resize_spec())


def test_a_result_is_remembered_and_forgotten(key):
    assert results.cached(key) is None
    value = {"name": "image_sync/resized/x.jpg", "width": 64, "height": 48}
    results.remember(key, value)
    assert results.cached(key) == value
    results.forget(key)
    assert results.cached(key) is None


def test_the_key_covers_the_content_and_every_setting_of_the_output(key):
    assert results.result_cache_key(SHA, conf.resize_spec().key) == key
    assert results.result_cache_key(SHA[::-1], conf.resize_spec()) != key
    with override_settings(IMAGE_SYNC={"QUALITY": 70}):
        assert results.result_cache_key(SHA, conf.resize_spec()) != key


def test_forgetting_a_resized_file_forgets_its_result(key):
    spec = conf.resize_spec()
    results.remember(key, {"name": "n", "width": 1, "height": 1})
    results.forget_file(original_name(SHA, "jpg"))  # not a resized file: nothing to forget
    assert results.cached(key) is not None
    results.forget_file(resized_name(SHA, spec.key, spec.extension))
    assert results.cached(key) is None


def test_a_cache_that_refuses_connections_costs_nothing_but_the_saving(settings, key):
    """A real Redis client against a port nothing listens on: no error reaches the caller."""
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }
    settings.IMAGE_SYNC = {"CACHE": "down"}
    results.remember(key, {"name": "n", "width": 1, "height": 1})
    assert results.cached(key) is None
    results.forget(key)


def twin(
    scope: str, status: str, resized: str = "", renditions: list[dict] | None = None
) -> UploadedImage:
    return UploadedImage.objects.create(
        original=original_name(SHA, "jpg"),
        resized=resized,
        md5=SHA[:32],
        sha256=SHA,
        scope=scope,
        status=status,
        width=640,
        height=480,
        format="JPEG",
        size=100,
        resized_width=64 if resized else None,
        resized_height=48 if resized else None,
        renditions=renditions or [],
    )


@pytest.mark.django_db
def test_a_done_twin_row_is_a_known_result():
    plan = processing.RenditionPlan(conf.resize_spec())  # the main output alone
    name = resized_name(SHA, plan.main.key, plan.main.extension)
    entry = {"format": "JPEG", "width": 64, "height": 48, "name": name, "size": 1234}
    mine = twin("user:1", Status.PENDING)
    assert results.known_result(mine, plan) is None  # no twin yet
    twin("user:2", Status.PROCESSING, resized=name, renditions=[entry])
    assert results.known_result(mine, plan) is None  # a twin, but not done
    twin("user:3", Status.DONE, resized=name)
    assert results.known_result(mine, plan) is None  # done, but not with this plan's outputs
    twin("user:4", Status.DONE, resized=name, renditions=[entry])
    assert results.known_result(mine, plan) == {
        "plan": plan.key,
        "name": name,
        "width": 64,
        "height": 48,
        "renditions": [entry],
        "placeholder": "",
    }


# -- locks ----------------------------------------------------------------------------------


def test_lock_is_exclusive_between_holders_and_reentrant_within_one(clear_cache):
    from django.core.cache import caches

    with results.lock("test:a") as first:
        assert first
        with results.lock("test:a") as again:  # the same thread: re-entrant
            assert again
    assert caches["default"].get("image_sync:lock:test:a") is None  # released
    caches["default"].add("image_sync:lock:test:b", f"{socket.gethostname()}:1:1:x", 30)
    try:
        with results.lock("test:b", wait=0.2) as taken:  # pid 1 is alive: wait, then give up
            assert not taken
    finally:
        caches["default"].delete("image_sync:lock:test:b")


def test_lock_held_by_a_killed_process_of_this_host_is_freed(clear_cache):
    from django.core.cache import caches

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    caches["default"].add("image_sync:lock:test:c", f"{socket.gethostname()}:{gone.pid}:1:x", 60)
    started = time.monotonic()
    with results.lock("test:c", wait=30) as taken:
        assert taken
    assert time.monotonic() - started < 5  # not the 30 s wait, nor the 60 s ttl
