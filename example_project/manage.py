#!/usr/bin/env python
"""Django's command-line utility for the django-image-sync example project."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Is it installed and is the virtualenv active? "
            "From the repository root, `scripts/demo` sets everything up."
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
