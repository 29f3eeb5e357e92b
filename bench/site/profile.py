"""Where a worker's milliseconds go: ``python -m bench.site.profile OUT COUNT IMAGE [IMAGE ...]``.

Run inside the benchmark site (``bench/run --only profile`` sets it up). Queues
COUNT distinct photos (the images in turn) through the upload service, then
runs the worker path (``worker.process_image``) on each in this one process,
without Celery, and times what it spends where: the render (decode, resize,
encode), the database (every query, through ``connection.execute_wrapper``),
Redis (the result cache and the content lock), the storage, the second look at
the file's cost (``inspect_image``) and the rest. Prints one JSON line; writes
cProfile's statistics to OUT.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site.settings")

import django

django.setup()

import redis  # noqa: E402
from django.core.files.storage import FileSystemStorage  # noqa: E402
from django.db import connection  # noqa: E402

from bench.site.driver import backlog  # noqa: E402
from django_image_sync import conf, processing, worker  # noqa: E402

spent: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)
_active: list[str] = []


@contextmanager
def timing(category: str) -> Iterator[None]:
    """Count the time in ``category``, less what categories nested in it took (a
    query run by a storage call counts as database, not twice)."""
    _active.append(category)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _active.pop()
        spent[category] += elapsed
        calls[category] += 1
        if _active:
            spent[_active[-1]] -= elapsed


def timed(category: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with timing(category):
            return function(*args, **kwargs)

    return wrapper


def instrument() -> None:
    connection.ensure_connection()

    def query(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        with timing("database"):
            return execute(sql, params, many, context)

    connection.execute_wrappers.append(query)
    redis.Redis.execute_command = timed("redis", redis.Redis.execute_command)  # type: ignore[method-assign]
    for name in ("_open", "_save", "exists", "size", "delete", "listdir"):
        setattr(FileSystemStorage, name, timed("storage", getattr(FileSystemStorage, name)))
    processing.inspect_image = timed("inspect_image (second look)", processing.inspect_image)
    original_renderer_for = processing.renderer_for

    def renderer_for(backend: str) -> Any:
        render = original_renderer_for(backend)
        return None if render is None else timed("render (decode, resize, encode)", render)

    processing.renderer_for = renderer_for


def main(argv: list[str]) -> int:
    out, count, *images = argv
    ids = backlog(f"p{os.getpid()}", int(count), images)["ids"]
    assert isinstance(ids, list)
    instrument()
    profiler = cProfile.Profile()
    totals = []
    # As each upload's task carries them: the worker needs no second look.
    budgets = conf.budgets_key(conf.resize_spec())
    for image_id in ids:
        start = time.perf_counter()
        profiler.enable()
        status = worker.process_image(image_id, budgets=budgets)
        profiler.disable()
        totals.append(time.perf_counter() - start)
        assert status == "done", status
    queries = calls["database"]
    total = sum(totals)
    result = {
        "images": len(ids),
        "ms_per_image": {name: value * 1000 / len(ids) for name, value in spent.items()},
        "calls_per_image": {name: value / len(ids) for name, value in calls.items()},
        "other_ms_per_image": (total - sum(spent.values())) * 1000 / len(ids),
        "total_ms_per_image": total * 1000 / len(ids),
        "first_ms": totals[0] * 1000,
        "queries_per_image": queries / len(ids),
    }
    with open(out, "w") as fh:
        stats = pstats.Stats(profiler, stream=fh)
        stats.sort_stats("cumulative").print_stats(60)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
