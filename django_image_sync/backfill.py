"""The backfill: which done images are out of date with the settings, what bringing
them up to date costs, and queueing it in batches (``manage.py image_sync_backfill``)."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db.models import QuerySet

from . import processing, results
from .models import Status, UploadedImage, main_size, output_entries
from .queue import enqueue_refresh
from .storage import image_storage


@dataclass
class Plan:
    """What a backfill would do, counted without touching a file."""

    done: int = 0
    stale_ids: list[int] = field(default_factory=list)
    # ("AVIF", 480) -> how many files of that kind are to be made.
    new_outputs: Counter[tuple[str, int]] = field(default_factory=Counter)
    # Files no row would refer to once every image is up to date.
    unreferenced: set[str] = field(default_factory=set)
    # CPU seconds per image, measured on a sample of the stale images here.
    seconds_per_image: float | None = None
    sampled: int = 0

    @property
    def estimated_seconds(self) -> float | None:
        if self.seconds_per_image is None:
            return None
        return self.seconds_per_image * len(self.stale_ids)


def _done_rows() -> QuerySet[UploadedImage]:
    return UploadedImage.objects.filter(status=Status.DONE).order_by("pk")


def make_plan(plan: processing.RenditionPlan, *, sample: int = 3) -> Plan:
    """Count what the backfill would do under ``plan``; change nothing."""
    result = Plan()
    kept: set[str] = set()
    dropped: set[str] = set()
    counted: set[str] = set()
    for image in _done_rows().iterator(chunk_size=500):
        result.done += 1
        have = set(image.output_names())
        if image.is_current(plan):
            kept |= have
            continue
        result.stale_ids.append(image.pk)
        wanted = output_entries(image.sha256, plan, main_size(image, plan))
        for entry in wanted:
            # Counted once a file: twin rows (other dedup scopes) share theirs.
            if entry["name"] not in have and entry["name"] not in counted:
                counted.add(entry["name"])
                result.new_outputs[(entry["format"], entry["width"])] += 1
        names = {entry["name"] for entry in wanted}
        kept |= names
        dropped |= have - names
    # Rows not done (pending, failed) keep whatever they refer to.
    for row in UploadedImage.objects.exclude(status=Status.DONE):
        kept |= set(row.output_names())
    result.unreferenced = dropped - kept
    if sample and result.stale_ids:
        result.seconds_per_image, result.sampled = _measure(result.stale_ids[:sample], plan)
    return result


def _measure(ids: list[int], plan: processing.RenditionPlan) -> tuple[float | None, int]:
    """CPU seconds to render each of these images under ``plan``, on average."""
    render = processing.renderer_for(plan.main.backend)
    if render is None:
        return None, 0
    spent = 0.0
    for image in UploadedImage.objects.filter(pk__in=ids):
        with image_storage.open(str(image.original.name), "rb") as fh:
            data = fh.read()
        started = time.process_time()
        render(io.BytesIO(data), plan, frozenset())
        spent += time.process_time() - started
    return spent / len(ids), len(ids)


@dataclass
class Applied:
    """What ``apply`` came to."""

    current: int = 0
    gone: int = 0
    # id -> why it is not up to date ("skipped", "failed: ...", "timed out", ...)
    behind: dict[int, str] = field(default_factory=dict)
    stopped: str = ""


def apply(
    ids: list[int],
    plan: processing.RenditionPlan,
    *,
    batch_size: int,
    rate: float,
    batch_timeout: float,
    queue: str | None,
    progress: Callable[[str], None],
) -> Applied:
    """Queue a refresh of each image, ``batch_size`` at a time, at most ``rate`` a
    second, and wait for each batch before the next: until each of its images
    is up to date, gone, or its refresh reported why not (``results.note_refresh``),
    or ``batch_timeout`` seconds. Stops when the broker cannot be reached, or
    when a whole batch timed out with nothing done (no worker on the queue?).
    """
    applied = Applied()
    for batch in _batches(ids, batch_size):
        results.forget_refreshes(batch)
        waiting: set[int] = set()
        for pk in batch:
            if not enqueue_refresh(pk, queue=queue):
                applied.stopped = "the broker could not be reached"
                applied.behind.update((p, "not queued") for p in batch[batch.index(pk) :])
                break
            waiting.add(pk)
            time.sleep(1 / rate if rate > 0 else 0)
        queued = len(waiting)
        deadline = time.monotonic() + batch_timeout
        while waiting and time.monotonic() < deadline:
            time.sleep(0.5)
            rows = {row.pk: row for row in UploadedImage.objects.filter(pk__in=waiting)}
            outcomes = results.refresh_outcomes(sorted(waiting))
            for pk in sorted(waiting):
                row = rows.get(pk)
                if row is None or row.status != Status.DONE:
                    applied.gone += 1  # deleted or started over: nothing to bring up to date
                elif row.is_current(plan):
                    applied.current += 1
                elif outcomes.get(pk, "done") not in ("done", "current"):
                    applied.behind[pk] = outcomes[pk]
                else:
                    continue
                waiting.discard(pk)
        timed_out = len(waiting)
        applied.behind.update((pk, "not refreshed in time") for pk in waiting)
        progress(f"{applied.current} of {len(ids)} images up to date")
        if applied.stopped:
            break
        if queued and timed_out == queued:
            applied.stopped = (
                f"no image of the last batch was refreshed in {batch_timeout:.0f} s: "
                "is a worker consuming the queue?"
            )
            break
    return applied


def _batches(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), max(1, size)):
        yield ids[start : start + max(1, size)]


def describe(plan: processing.RenditionPlan) -> str:
    """The settings a plan comes from, in one line."""
    main = plan.main
    widths = ", ".join(str(w) for w in sorted(set(plan.widths))) or "none"
    formats = (
        ", ".join(
            f"{e.format} ({', '.join(f'{k} {v}' for k, v in e.options)})" for e in plan.formats
        )
        or "none"
    )
    return (
        f"main {main.format} q{main.quality} within {main.box[0]}x{main.box[1]}; "
        f"widths {widths}; extra formats {formats}; "
        f"placeholder {'on' if plan.placeholder else 'off'}"
    )


__all__ = ["Plan", "apply", "describe", "make_plan"]
