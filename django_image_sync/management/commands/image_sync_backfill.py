"""``manage.py image_sync_backfill``: bring every done image's outputs up to the
current settings. Without ``--apply`` it prints the plan and changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import backfill, conf


class Command(BaseCommand):
    help = (
        "Show which images' outputs are out of date with the current settings "
        "(TARGET_SIZE, OUTPUT_FORMAT, QUALITY, RENDITION_WIDTHS, RENDITION_FORMATS, "
        "FORMAT_OPTIONS, PLACEHOLDER) and what bringing them up to date costs; with "
        "--apply, queue that work in batches. Running it again continues where it stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--apply", action="store_true", help="Queue the work (default: only show the plan)."
        )
        parser.add_argument(
            "--batch-size", type=int, default=100, help="Images queued at a time (default 100)."
        )
        parser.add_argument(
            "--rate", type=float, default=20.0, help="Most tasks queued a second (default 20)."
        )
        parser.add_argument(
            "--batch-timeout",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help="How long to wait for a batch before going on (default 600).",
        )
        parser.add_argument(
            "--queue", default=None, help="Celery queue for the work (default: Celery's default)."
        )
        parser.add_argument(
            "--sample",
            type=int,
            default=3,
            help="Images rendered here to estimate the worker time (default 3; 0: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        plan = conf.output_plan()
        self.stdout.write(f"Settings: {backfill.describe(plan)}.")
        counted = backfill.make_plan(plan, sample=0 if options["apply"] else options["sample"])
        stale = len(counted.stale_ids)
        self.stdout.write(f"{stale} of {counted.done} done images are out of date.")
        if counted.new_outputs:
            self.stdout.write("Outputs to make:")
            for (fmt, width), count in sorted(
                counted.new_outputs.items(), key=lambda item: (item[0][0], -item[0][1])
            ):
                self.stdout.write(f"  {fmt} {width} px wide: {count} image(s)")
        self.stdout.write(
            f"Files no row would refer to any more, deleted once replaced: "
            f"{len(counted.unreferenced)}."
        )
        if counted.seconds_per_image is not None:
            self.stdout.write(
                f"Estimated worker time: {counted.seconds_per_image * stale:.0f} s of CPU "
                f"({counted.seconds_per_image * 1000:.0f} ms an image, measured here on "
                f"{counted.sampled} of them)."
            )
        if not options["apply"]:
            self.stdout.write("Nothing was changed. Run again with --apply to do it.")
            return
        if not stale:
            self.stdout.write("Nothing to do.")
            return
        applied = backfill.apply(
            counted.stale_ids,
            plan,
            batch_size=options["batch_size"],
            rate=options["rate"],
            batch_timeout=options["batch_timeout"],
            queue=options["queue"],
            progress=self.stdout.write,
        )
        self.stdout.write(f"{applied.current} image(s) brought up to date.")
        if applied.gone:
            self.stdout.write(f"{applied.gone} image(s) deleted or started over meanwhile.")
        if applied.behind:
            reasons = Counter(reason.split(":", 1)[0] for reason in applied.behind.values())
            listed = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
            ids = ", ".join(map(str, sorted(applied.behind)[:20]))
            more = ", ..." if len(applied.behind) > 20 else ""
            self.stdout.write(
                f"{len(applied.behind)} image(s) not up to date ({listed}; ids {ids}{more}); "
                "the worker's log says why. Run the command again to continue."
            )
        if applied.stopped:
            self.stderr.write(f"Stopped: {applied.stopped}.")
