"""``manage.py image_sync_backfill``: bring every done image's outputs up to the
current settings. Without ``--apply`` it prints the plan and changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ... import backfill, conf


class Command(BaseCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Translated here, when the command is loaded to run or to show its help,
        # in the language active then (argparse takes no lazy string).
        self.help = _(
            "Show which images' outputs are out of date with the current settings "
            "(TARGET_SIZE, OUTPUT_FORMAT, QUALITY, RENDITION_WIDTHS, RENDITION_FORMATS, "
            "FORMAT_OPTIONS, PLACEHOLDER) and what bringing them up to date costs; with "
            "--apply, queue that work in batches. Running it again continues where it stopped."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--apply",
            action="store_true",
            help=_("Queue the work (default: only show the plan)."),
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=100,
            help=_("Images queued at a time (default %(default)s)."),
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=20.0,
            help=_("Most tasks queued a second (default %(default)g)."),
        )
        parser.add_argument(
            "--batch-timeout",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help=_("How long to wait for a batch before going on (default %(default)g)."),
        )
        parser.add_argument(
            "--queue",
            default=None,
            help=_("Celery queue for the work (default: Celery's default)."),
        )
        parser.add_argument(
            "--sample",
            type=int,
            default=3,
            help=_(
                "Images rendered here to estimate the worker time (default %(default)s; 0: none)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        plan = conf.output_plan()
        self.stdout.write(_("Settings: %(settings)s.") % {"settings": backfill.describe(plan)})
        counted = backfill.make_plan(plan, sample=0 if options["apply"] else options["sample"])
        stale = len(counted.stale_ids)
        self.stdout.write(
            ngettext(
                "%(stale)d of %(done)d done images is out of date.",
                "%(stale)d of %(done)d done images are out of date.",
                stale,
            )
            % {"stale": stale, "done": counted.done}
        )
        if counted.new_outputs:
            self.stdout.write(_("Outputs to make:"))
            for (fmt, width), count in sorted(
                counted.new_outputs.items(), key=lambda item: (item[0][0], -item[0][1])
            ):
                self.stdout.write(
                    "  "
                    + ngettext(
                        "%(format)s %(width)d px wide: %(count)d image",
                        "%(format)s %(width)d px wide: %(count)d images",
                        count,
                    )
                    % {"format": fmt, "width": width, "count": count}
                )
        self.stdout.write(
            _("Files no row would refer to any more, deleted once replaced: %(count)d.")
            % {"count": len(counted.unreferenced)}
        )
        if counted.seconds_per_image is not None:
            self.stdout.write(
                _(
                    "Estimated worker time: %(seconds).0f s of CPU (%(milliseconds).0f ms an "
                    "image, measured here on %(sampled)d of them)."
                )
                % {
                    "seconds": counted.seconds_per_image * stale,
                    "milliseconds": counted.seconds_per_image * 1000,
                    "sampled": counted.sampled,
                }
            )
        if not options["apply"]:
            self.stdout.write(_("Nothing was changed. Run again with --apply to do it."))
            return
        if not stale:
            self.stdout.write(_("Nothing to do."))
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
        self.stdout.write(
            ngettext(
                "%(count)d image brought up to date.",
                "%(count)d images brought up to date.",
                applied.current,
            )
            % {"count": applied.current}
        )
        if applied.gone:
            self.stdout.write(
                ngettext(
                    "%(count)d image deleted or started over meanwhile.",
                    "%(count)d images deleted or started over meanwhile.",
                    applied.gone,
                )
                % {"count": applied.gone}
            )
        if applied.behind:
            reasons = Counter(reason.split(":", 1)[0] for reason in applied.behind.values())
            listed = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
            ids = ", ".join(map(str, sorted(applied.behind)[:20]))
            more = ", ..." if len(applied.behind) > 20 else ""
            self.stdout.write(
                ngettext(
                    "%(count)d image not up to date (%(reasons)s; ids %(ids)s); the worker's "
                    "log says why. Run the command again to continue.",
                    "%(count)d images not up to date (%(reasons)s; ids %(ids)s); the worker's "
                    "log says why. Run the command again to continue.",
                    len(applied.behind),
                )
                % {"count": len(applied.behind), "reasons": listed, "ids": ids + more}
            )
        if applied.stopped:
            self.stderr.write(_("Stopped: %(reason)s.") % {"reason": applied.stopped})
