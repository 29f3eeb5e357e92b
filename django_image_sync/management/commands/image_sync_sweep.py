"""``manage.py image_sync_sweep``: queue again images left pending or processing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ... import queue


class Command(BaseCommand):
    help = (
        "Queue again the images left pending (never reached the broker) or processing "
        "(their worker died) for longer than --older-than seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=queue.DEFAULT_SWEEP_AGE,
            metavar="SECONDS",
            help=f"Age threshold in seconds (default {queue.DEFAULT_SWEEP_AGE}).",
        )
        parser.add_argument(
            "--limit", type=int, default=500, help="Queue at most this many (default 500)."
        )

    def handle(self, *args: Any, older_than: float, limit: int, **options: Any) -> None:
        queued = queue.sweep(older_than, limit=limit)
        self.stdout.write(f"Queued {len(queued)} image(s) again.")
