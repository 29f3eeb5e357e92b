"""The worker path, in Celery: claim a row, reuse a known result or resize the original
once, store the result, and move the row to ``done`` or ``failed``."""

from __future__ import annotations

import io
import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import conf, files, processing, queue, results
from .failures import Failure, fail_image
from .files import TransientError
from .models import Status, UploadedImage, main_size, output_entries, resized_name
from .signals import image_processed
from .storage import image_storage, output_storage

logger = logging.getLogger("django_image_sync")


def claim(image_id: int, image: UploadedImage | None = None) -> UploadedImage | None:
    """Take a row for processing; None when it is done, failed or gone.

    ``image`` is the row as read just before (else it is read here)."""
    if image is None:
        image = UploadedImage.objects.filter(pk=image_id).first()
    if image is None or image.status not in (Status.PENDING, Status.PROCESSING):
        return None
    attempts = image.attempts + 1
    # Conditional on the attempts we read: of two tasks claiming the same row at
    # once (a redelivery racing a retry), only one wins; a row another run
    # finished meanwhile is not taken. A row waiting for the sweeper is no
    # longer due once claimed (retry_at).
    claimed = UploadedImage.objects.filter(attempts=image.attempts).transition(
        image_id, Status.PROCESSING, attempts=attempts, retry_at=None
    )
    if not claimed:
        return None
    image.status = Status.PROCESSING
    image.attempts = attempts
    return image


# Of two runs of one content (a duplicate delivery of the task, or twin rows,
# on any hosts), the second waits this long for the first to finish, then
# finds the image done or reuses its result. Well below PROCESSING_TIME_LIMIT:
# past it (a holder that died on another host), the second goes on.
RENDER_LOCK_WAIT = 30.0


def process_image(image_id: int, *, force: bool = False, budgets: str = "") -> str:
    """Run the worker path for one image. Returns the image's status afterwards.

    Idempotent: a done or failed image is left alone. A result cached for the
    same content and settings (or held by a twin row) is reused without
    decoding. ``force`` skips both and writes every output again (used by
    "reprocess"). ``budgets`` is ``conf.budgets_key`` of the budgets the file
    was checked against at upload: when the worker's are the same, the file's
    cost is not checked a second time. Raises :class:`TransientError` for
    failures worth a retry.

    Once across hosts: a run holds its content's render lock (``results.lock``,
    in the shared cache) from its claim to its end. A duplicate delivery of the
    task meanwhile waits for it, then finds the image done and is skipped
    without claiming or decoding it; a twin row of the same content waits, then
    reuses the result, so each output is written once. A lock whose holder died
    on this host is freed at once. Writing the outputs and recording them in
    the row run under the content's lock (``results.content_lock``), as does
    every deletion of that content's unreferenced files, so neither undoes the
    other.
    """
    # Read with whether any other row holds the same content: when none does,
    # no twin's result can be reused (_known) and none is looked for. A twin
    # uploaded and done after this read left its result in the shared cache,
    # where it is found; were that lost too, the content would be rendered
    # again, which costs time but nothing else.
    others = UploadedImage.objects.filter(sha256=OuterRef("sha256")).exclude(pk=OuterRef("pk"))
    image = UploadedImage.objects.filter(pk=image_id).annotate(twins=Exists(others)).first()
    if image is None or image.status not in (Status.PENDING, Status.PROCESSING):
        return "skipped"
    hold = conf.get("PROCESSING_TIME_LIMIT") + queue.HARD_TIME_LIMIT_GRACE
    with results.lock(f"render:{image.sha256}", wait=RENDER_LOCK_WAIT, ttl=hold) as alone:
        if not alone:
            logger.warning("django-image-sync: content %s still rendering; going on", image.sha256)
        claimed = claim(image_id, image)
        if claimed is None:
            return "skipped"
        return _process(claimed, force=force, budgets=budgets)


def _process(image: UploadedImage, *, force: bool, budgets: str = "") -> str:
    max_attempts = conf.get("MAX_ATTEMPTS")
    if image.attempts > max_attempts:
        return fail_image(
            image.pk,
            f"gave up after {max_attempts} attempts",
            code="attempts",
            params={"count": max_attempts},
        )

    plan = conf.output_plan()
    key = results.result_cache_key(image.sha256, plan.main)
    outcome = None
    # Looked up without the content's lock (most images are new), then again
    # under it when something was found, before the row points at it; not on
    # a first attempt at content no other row holds, which nothing has made
    # (a twin uploaded since the row was read costs a second render at worst).
    looks = image.attempts > 1 or getattr(image, "twins", True)
    if not force and looks and _known(image, plan, key) is not None:
        with results.content_lock(image.sha256):
            known = _known(image, plan, key)
            if known is not None:
                outcome = _finish(image, known)
    if outcome is None:
        made = _render(image, plan, force=force, budgets=budgets)
        if isinstance(made, Failure):
            return fail_image(image.pk, made.message, code=made.code, params=made.params)
        with results.content_lock(image.sha256):
            result = _store(image, plan, *made, force=force)
            results.remember(key, result)
            outcome = _finish(image, result)
    if outcome == Status.DONE:
        image_processed.send(sender=UploadedImage, image=image)
    return outcome


def _finish(image: UploadedImage, result: dict[str, Any]) -> str:
    """Move the row to ``done`` with ``result``; delete what it no longer refers to.

    ``image`` is given the values written, as a read of the row would (the
    ``image_processed`` signal sends it)."""
    old_outputs = image.output_names()
    fields = {
        "error": "",
        "error_code": "",
        "error_params": {},
        "retry_at": None,
        "retrying_since": None,
        "updated": timezone.now(),
        **_fields(result),
    }
    moved = UploadedImage.objects.transition(image.pk, Status.DONE, **fields)
    if moved:
        for name, value in {"status": Status.DONE, **fields}.items():
            setattr(image, name, value)
    if not _tidy_after(old_outputs, result, moved=moved):
        return "skipped"
    logger.info(
        "django-image-sync: image %s done (%sx%s, %s outputs)",
        image.pk,
        result["width"],
        result["height"],
        len(result["renditions"]),
    )
    return Status.DONE


def refresh_outputs(image_id: int) -> str:
    """Bring a done image's outputs up to the current settings (the backfill's task).

    The row keeps serving its old outputs until the new ones are written;
    then it is switched to them in one conditional UPDATE, and the files no
    row refers to any more are deleted. Outputs the row already has under
    the same names are not encoded again; a refresh that fails deletes what
    it wrote. Returns "done", "current" (nothing to do) or "skipped" (the row
    changed or went away, a refresh of it is running, or it costs more than
    the budgets now allow).
    """
    limit = conf.get("PROCESSING_TIME_LIMIT") + queue.HARD_TIME_LIMIT_GRACE
    with results.lock(f"refresh:{image_id}", ttl=limit) as taken:
        outcome = _refresh(image_id) if taken else "skipped"
    results.note_refresh(image_id, outcome)
    return outcome


def _refresh(image_id: int) -> str:
    image = UploadedImage.objects.filter(pk=image_id, status=Status.DONE).first()
    if image is None:
        return "skipped"
    plan = conf.output_plan()
    if image.is_current(plan):
        return "current"
    key = results.result_cache_key(image.sha256, plan.main)
    with results.content_lock(image.sha256):
        known = _known(image, plan, key)
        if known is not None:
            return _switch(image, known)
    made = _render(image, plan, force=False)
    if isinstance(made, Failure):
        # The settings now ask for more than this image may cost (a lowered
        # budget): it keeps its current outputs.
        logger.warning("django-image-sync: image %s not refreshed: %s", image_id, made.message)
        return "skipped"
    with results.content_lock(image.sha256):
        try:
            result = _store(image, plan, *made, force=False)
        except BaseException:
            # Under the content's lock no other run is between writing these
            # names and recording them: what no row refers to can go.
            old = set(image.output_names())
            planned = output_entries(image.sha256, plan, main_size(image, plan))
            files.delete_unreferenced([e["name"] for e in planned if e["name"] not in old])
            raise
        results.remember(key, result)
        return _switch(image, result)


def _switch(image: UploadedImage, result: dict[str, Any]) -> str:
    """Point a done row at ``result`` unless it changed since it was read."""
    moved = UploadedImage.objects.filter(
        pk=image.pk, status=Status.DONE, updated=image.updated
    ).update(updated=timezone.now(), **_fields(result))
    if not _tidy_after(image.output_names(), result, moved=bool(moved)):
        return "skipped"
    logger.info("django-image-sync: image %s refreshed to the current settings", image.pk)
    return Status.DONE


def _tidy_after(old_outputs: list[str], result: dict[str, Any], *, moved: bool) -> bool:
    """After trying to point a row at ``result``: delete the files no row refers
    to, the result's own when the row did not move (deleted or started over
    meanwhile), else the row's outputs of earlier settings (``old_outputs``).
    Returns ``moved``."""
    if moved:
        files.delete_unreferenced(sorted(set(old_outputs) - set(_names(result))))
    else:
        files.delete_unreferenced(_names(result))
    return moved


def _known(image: UploadedImage, plan: processing.RenditionPlan, key: str) -> dict[str, Any] | None:
    """A result made before for the same content and settings (the cache, or a twin
    row), if every one of its files is still stored."""
    result = results.cached_result(key, plan)
    if result is None and getattr(image, "twins", True):
        result = results.known_result(image, plan)
    if result is not None and not all(files.still_stored(name) for name in _names(result)):
        # The cache (or a row) outlived a file: a deletion whose cache clean-up
        # failed, or a per-process cache. Make the outputs again.
        results.forget(key)
        return None
    return result


def _render(
    image: UploadedImage, plan: processing.RenditionPlan, *, force: bool, budgets: str = ""
) -> tuple[processing.Rendered, dict[str, dict[str, Any]]] | Failure:
    """Read the original once and make every output of ``plan`` from one decode.

    Returns the outputs and those the row already has (by name, not encoded
    again), or a message saying why the image cannot be processed. The file's
    cost is checked first, unless it was checked against the same budgets
    (``budgets``, from the upload).
    """
    try:
        with image_storage.open(str(image.original.name), "rb") as fh:
            data = fh.read()
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        raise TransientError(f"cannot read the original {image.original.name}: {exc}") from exc
    checked = bool(budgets) and budgets == conf.budgets_key(plan.main)
    too_costly = None if checked else _over_budget(data, plan.main)
    if too_costly is not None:
        return Failure(
            f"{image.original_name}: {too_costly.message}",
            too_costly.code,
            {"file": image.original_name, **too_costly.params},
        )
    try:
        render = processing.renderer_for(plan.main.backend)
    except (ImportError, OSError) as exc:
        # pyvips or libvips missing on this worker: the image is fine and
        # can be resized once they are installed (check E011 says how).
        raise TransientError(f"the {plan.main.backend} backend cannot be loaded: {exc}") from exc
    have: dict[str, dict[str, Any]] = {}
    if not force:
        have = {entry["name"]: entry for entry in image.renditions or ()}
        if image.resized.name and str(image.resized.name) not in have:
            have[str(image.resized.name)] = {}  # done before renditions: size unknown
    try:
        if render is None:  # a backend of the site's own: the main output only
            resized = processing.resizer_for(plan.main.backend)(io.BytesIO(data), plan.main)
            planned = plan.outputs((resized.width, resized.height))[0]
            return processing.Rendered((processing.Output(planned, resized.data),)), have
        skip = frozenset(
            output.key
            for output in plan.outputs(main_size(image, plan))
            if resized_name(image.sha256, output.key, output.encoding.extension) in have
        )
        return render(io.BytesIO(data), plan, skip), have
    except SoftTimeLimitExceeded:
        raise  # the task marks the image failed (PROCESSING_TIME_LIMIT)
    except Exception as exc:
        # The bytes passed validation but cannot be processed: retrying
        # the same bytes cannot help.
        return Failure(
            f"the image cannot be processed: {exc}", "unprocessable", {"detail": str(exc)}
        )


def _store(
    image: UploadedImage,
    plan: processing.RenditionPlan,
    rendered: processing.Rendered,
    have: dict[str, dict[str, Any]],
    *,
    force: bool,
) -> dict[str, Any]:
    """Write each new output once under its content-addressed name; the result.

    ``force`` replaces files already there (atomically on local storages)."""
    entries: list[dict[str, Any]] = []
    name = ""
    try:
        for output in rendered.outputs:
            planned = output.planned
            name = resized_name(image.sha256, planned.key, planned.encoding.extension)
            if output.data is None:
                size = int(have[name].get("size") or output_storage.size(name))
            else:
                if image.attempts > 1:
                    # An earlier attempt may have been killed while writing.
                    files.remove_incoming(name)
                size = len(output.data)
                files.write_once(name, ContentFile(output.data), size, replace=force)
            entries.append(
                {
                    "format": planned.format,
                    "width": planned.width,
                    "height": planned.height,
                    "name": name,
                    "size": size,
                }
            )
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # What this attempt wrote stays for the retry, which writes the same
        # names (or reuses them); another run of the same image may be using
        # them too. An image that fails for good has them deleted (fail_image).
        raise TransientError(f"cannot store the resized file {name}: {exc}") from exc
    main = entries[0]
    return {
        "plan": plan.key,
        "name": main["name"],
        "width": main["width"],
        "height": main["height"],
        "renditions": entries,
        "placeholder": rendered.placeholder,
    }


def _fields(result: dict[str, Any]) -> dict[str, Any]:
    """The row's fields for a result."""
    return {
        "resized": result["name"],
        "resized_width": result["width"],
        "resized_height": result["height"],
        "renditions": result["renditions"],
        "placeholder": result["placeholder"],
    }


def _names(result: dict[str, Any]) -> list[str]:
    return [result["name"]] + [entry["name"] for entry in result["renditions"]]


def _over_budget(data: bytes, spec: processing.ResizeSpec) -> processing.ImageProblem | None:
    """Why resizing ``data`` would cost more than the worker allows now, if it would.

    The upload was checked against the same budgets; this second look covers
    budgets lowered since, or a backend changed, before anything is decoded.
    Other problems are left to the decoder, whose own message is clearer.
    """
    try:
        processing.inspect_image(
            io.BytesIO(data),
            allowed_formats=conf.SUPPORTED_INPUT_FORMATS,
            **conf.cost_limits(spec),
        )
    except processing.ImageProblem as problem:
        if problem.code in ("max_decode_memory", "max_jpeg_scans", "max_pixels"):
            return problem
    return None
