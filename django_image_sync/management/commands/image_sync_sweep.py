"""``manage.py image_sync_sweep``: queue again images left pending or processing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext, ngettext

from ... import queue


class Command(BaseCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Translated here, when the command is loaded to run or to show its help,
        # in the language active then (argparse takes no lazy string).
        self.help = gettext(
            "Queue again the images left pending (never reached the broker) or processing "
            "(their worker died) for longer than --older-than seconds."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=queue.DEFAULT_SWEEP_AGE,
            metavar="SECONDS",
            help=gettext("Age threshold in seconds (default %(default)s)."),
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=500,
            help=gettext("Queue at most this many (default %(default)s)."),
        )

    def handle(self, *args: Any, older_than: float, limit: int, **options: Any) -> None:
        queued = queue.sweep(older_than, limit=limit)
        self.stdout.write(
            ngettext("Queued %(count)d image again.", "Queued %(count)d images again.", len(queued))
            % {"count": len(queued)}
        )
